//! zpm on a host other than God's: God's endpoints exposed locally through the keyed
//! tunnel ([`expose`]), and the stand-in that keeps this host's agents ([`standin`]).

pub mod expose;
pub mod standin;

pub use expose::{Exposed, RemoteGod, Unreachable, expose_god};
