//! Plain aligned text tables and the number formats the reports share.

/// A table printed with every column padded to its widest cell.
pub struct Table {
    title: String,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `headers`.
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Self {
        Self {
            title: title.into(),
            rows: vec![headers.iter().map(ToString::to_string).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }

    fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|row| row.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let total = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
        let mut out = format!(
            "{}\n{}\n",
            self.title,
            "=".repeat(total.max(self.title.len()))
        );
        for (index, row) in self.rows.iter().enumerate() {
            out.push_str(&render_row(row, &widths));
            if index == 0 {
                out.push_str(&"-".repeat(total));
                out.push('\n');
            }
        }
        out
    }
}

fn render_row(row: &[String], widths: &[usize]) -> String {
    let cells: Vec<String> = row
        .iter()
        .zip(widths)
        .map(|(cell, width)| format!("{cell:<width$}"))
        .collect();
    format!("{}\n", cells.join("  ").trim_end())
}

/// Microseconds with one decimal.
pub fn micros(us: f64) -> String {
    format!("{us:.1} µs")
}

/// A rate with thousands separators, e.g. `123,456 /s`.
pub fn rate(per_second: f64) -> String {
    format!("{} /s", thousands(per_second.round() as u64))
}

/// An integer with thousands separators.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Kibibytes as MiB with two decimals; negative growth is shown as such.
pub fn mib(kib: i64) -> String {
    format!("{:.2} MiB", kib as f64 / 1024.0)
}

/// `PASS` or `MISS` for a target.
pub fn verdict(met: bool) -> String {
    if met { "PASS" } else { "MISS" }.to_owned()
}

/// Prints `results` as pretty JSON (`--json`) or with `print`.
pub fn emit<T: serde::Serialize>(
    results: &T,
    json: bool,
    print: impl FnOnce(&T),
) -> anyhow::Result<()> {
    if json {
        let text = serde_json::to_string_pretty(results)
            .map_err(|e| anyhow::anyhow!("encoding JSON: {e}"))?;
        println!("{text}");
    } else {
        print(results);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }

    #[test]
    fn columns_are_aligned() {
        let mut table = Table::new("t", &["a", "long header"]);
        table.row(vec!["wide cell".into(), "x".into()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "a          long header");
        assert_eq!(lines[4], "wide cell  x");
    }
}
