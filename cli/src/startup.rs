//! `zpm startup`: a systemd unit that brings the saved apps back at boot, like
//! `pm2 startup`. Printed by default; written and enabled with `--install` (root only).

use anyhow::{Context as _, bail};
use zpm_host::home::Home;

fn unit(home: &Home, exe: &std::path::Path, user: &str) -> String {
    format!(
        "[Unit]\n\
         Description=zpm process manager ({user})\n\
         After=network.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         User={user}\n\
         Environment=ZPM_HOME={home}\n\
         ExecStart={exe} resurrect\n\
         ExecStop={exe} kill\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        home = home.root().display(),
        exe = exe.display(),
    )
}

fn user_name() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

pub fn run(home: &Home, install: bool) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the zpm executable")?;
    let user = user_name();
    let text = unit(home, &exe, &user);
    if !install {
        return crate::output::print_line(&text);
    }
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "installing a systemd unit needs root: run `sudo {} startup --install`",
            exe.display()
        );
    }
    let path = format!("/etc/systemd/system/zpm-{user}.service");
    std::fs::write(&path, &text).with_context(|| format!("writing {path}"))?;
    let enabled = std::process::Command::new("systemctl")
        .args(["enable", &format!("zpm-{user}.service")])
        .status()
        .context("running systemctl enable")?;
    if !enabled.success() {
        bail!("systemctl enable zpm-{user}.service failed; the unit is at {path}");
    }
    crate::output::print_line(&format!(
        "zpm: installed and enabled {path}; run `zpm save` to choose the apps it restores"
    ))
}
