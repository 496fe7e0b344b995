//! zpm on a host other than God's: God's endpoints exposed locally through the keyed
//! tunnel ([`expose`]).

pub mod expose;

pub use expose::{Exposed, RemoteGod, Unreachable, expose_god};
