//! Type errors in the scenario's words. serde names Rust types ("expected i32", "expected a
//! string"); a scenario's reader thinks in integers, durations and lists of windows. The
//! duration and window fields read through visitors of their own, whose `expecting` is the
//! plain wording, and [`plain`] renames the primitive types in any other message.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// For a duration field: a string such as "3s" (kept as text; the plan parses it).
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration such as \"3s\" or \"250ms\" (in quotes)")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
    }
    d.deserialize_any(V)
}

/// For `server.pauses`: a list of windows, or one window alone (a list of one).
pub fn windows<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of windows such as [\"0.5s-0.8s\"]")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(vec![v.to_string()]))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(w) = seq.next_element::<toml::Value>()? {
                match w {
                    toml::Value::String(s) => out.push(s),
                    other => {
                        return Err(de::Error::custom(format!(
                            "{other} in the list is not a window; expected a list of windows \
                             such as [\"0.5s-0.8s\"]"
                        )))
                    }
                }
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(V)
}

/// serde's names of Rust types, as a scenario's reader says them.
pub fn plain(msg: &str) -> String {
    const NAMES: &[(&str, &str)] = &[
        ("expected i32", "expected an integer"),
        ("expected i64", "expected an integer"),
        ("expected u8", "expected an integer from 0 to 255"),
        ("expected u16", "expected an integer from 0 to 65,535"),
        ("expected u32", "expected an integer, 0 or more"),
        ("expected u64", "expected an integer, 0 or more"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a boolean", "expected true or false"),
        (
            "expected a sequence",
            "expected a list such as [\"a\", \"b\"]",
        ),
        ("invalid type: ", "got "),
        ("invalid value: ", "got "),
        ("got string", "got the string"),
        ("got integer", "got the integer"),
        ("got floating point", "got the number"),
        ("got boolean", "got"),
        ("`, expected", "`; expected"),
        ("\", expected", "\"; expected"),
    ];
    let mut out = msg.to_string();
    for (from, to) in NAMES {
        out = out.replace(from, to);
    }
    out
}

/// A string or a list of strings.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn list(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_type_names_become_words() {
        assert_eq!(
            plain("invalid type: string \"lots\", expected i32"),
            "got the string \"lots\"; expected an integer"
        );
        assert_eq!(
            plain("invalid value: integer `70000`, expected u16"),
            "got the integer `70000`; expected an integer from 0 to 65,535"
        );
        assert_eq!(
            plain("invalid type: floating point `1.5`, expected u64"),
            "got the number `1.5`; expected an integer, 0 or more"
        );
    }
}
