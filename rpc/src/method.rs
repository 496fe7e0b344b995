//! A method declared once, by type: its wire name together with the types of its params
//! and its result. Servers register and clients call by the type, so a name is never
//! spelt twice and both sides agree on the shapes at compile time. (zpm's own methods are
//! declared in zpm-proto.) Pushes and notifications are methods whose result is unused.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub trait Method {
    /// The `method` field on the wire, e.g. `app.start`.
    const NAME: &'static str;
    type Params: Serialize + DeserializeOwned + Send + Sync + 'static;
    type Output: Serialize + DeserializeOwned + Send + 'static;
}

/// Declares unit types implementing [`Method`]:
/// `methods! { /// doc
///             AppList = "app.list" (NoParams) -> Vec<Row>; }`
#[macro_export]
macro_rules! methods {
    ($($(#[$attr:meta])* $ty:ident = $name:literal ($params:ty) -> $out:ty;)*) => {
        $(
            $(#[$attr])*
            #[derive(Debug, Clone, Copy)]
            pub enum $ty {}

            impl $crate::Method for $ty {
                const NAME: &'static str = $name;
                type Params = $params;
                type Output = $out;
            }
        )*
    };
}
