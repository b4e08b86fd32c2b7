//! Mode keys (`server.accept`, `client.arrival`) and the keys that only some of their modes use.
//!
//! In a file, a key its mode does not use is an error (the plan says which and how to unset
//! it). But an override is the user's last word: when `--set server.accept=never` (or a
//! comparison axis, or a case) replaces the file's `accept = "rate"`, the file's
//! `accept_rate = 1000` belongs to the replaced mode and is dropped, with a note, instead of
//! failing the run. A key the user gave as an override is never dropped.

/// A mode key, its default, and the keys only some of its modes use.
struct ModeKey {
    key: &'static str,
    default: &'static str,
    only: &'static [(&'static str, &'static [&'static str])],
}

const MODES: &[ModeKey] = &[
    ModeKey {
        key: "server.accept",
        default: "fast",
        only: &[
            ("server.accept_rate", &["rate"]),
            ("server.pauses", &["pause"]),
            ("server.workers", &["workers"]),
            ("server.service_time", &["workers"]),
        ],
    },
    ModeKey {
        key: "client.arrival",
        default: "constant",
        only: &[
            ("client.rate", &["constant", "poisson"]),
            ("client.burst_size", &["burst"]),
            ("client.burst_interval", &["burst"]),
        ],
    },
];

fn get<'a>(doc: &'a toml::Table, dotted: &str) -> Option<&'a toml::Value> {
    let (table, key) = dotted.split_once('.')?;
    doc.get(table)?.as_table()?.get(key)
}

fn mode_of(doc: &toml::Table, m: &ModeKey) -> String {
    get(doc, m.key)
        .and_then(toml::Value::as_str)
        .unwrap_or(m.default)
        .to_string()
}

/// After overrides turned `before` into `doc`: for each mode key an override changed, removes
/// from `doc` the keys of `before` that only the replaced mode uses and that no override gave
/// (`overridden` lists the keys the overrides set). Returns one note per key dropped.
pub fn drop_replaced(
    before: &toml::Table,
    doc: &mut toml::Table,
    overridden: &[String],
) -> Vec<String> {
    let given = |k: &str| overridden.iter().any(|o| o == k);
    let mut notes = Vec::new();
    for m in MODES {
        let (old, new) = (mode_of(before, m), mode_of(doc, m));
        if !given(m.key) || old == new {
            continue;
        }
        for (key, modes) in m.only {
            if modes.contains(&new.as_str()) || given(key) {
                continue;
            }
            let Some(value) = get(doc, key).cloned() else {
                continue;
            };
            let (table, name) = key.split_once('.').expect("dotted");
            if let Some(t) = doc.get_mut(table).and_then(toml::Value::as_table_mut) {
                t.remove(name);
            }
            let mode_name = m.key.split_once('.').map_or(m.key, |(_, n)| n);
            notes.push(format!(
                "{} = \"{new}\" replaces the scenario's \"{old}\": dropped its {key} = {value} \
                 (used only with {mode_name} = {})",
                m.key,
                modes
                    .iter()
                    .map(|v| format!("\"{v}\""))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn an_override_of_the_mode_drops_the_replaced_modes_keys_from_the_file() {
        let before = table("[server]\naccept = \"rate\"\naccept_rate = 1000\nbacklog = 5\n");
        let mut doc = table("[server]\naccept = \"never\"\naccept_rate = 1000\nbacklog = 5\n");
        let notes = drop_replaced(&before, &mut doc, &["server.accept".into()]);
        assert_eq!(doc, table("[server]\naccept = \"never\"\nbacklog = 5\n"));
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].contains("dropped its server.accept_rate = 1000"),
            "{notes:?}"
        );
        // A default mode counts as a mode: constant -> burst drops the file's rate.
        let before = table("[client]\nrate = 2000.0\n");
        let mut doc = table("[client]\nrate = 2000.0\narrival = \"burst\"\n");
        drop_replaced(&before, &mut doc, &["client.arrival".into()]);
        assert_eq!(doc, table("[client]\narrival = \"burst\"\n"));
    }

    #[test]
    fn a_key_the_user_gave_or_the_new_mode_uses_stays() {
        let before = table("[server]\naccept = \"rate\"\naccept_rate = 1000\n");
        let mut doc = table("[server]\naccept = \"never\"\naccept_rate = 7\n");
        let given = [
            "server.accept".to_string(),
            "server.accept_rate".to_string(),
        ];
        assert!(drop_replaced(&before, &mut doc, &given).is_empty());
        assert_eq!(
            get(&doc, "server.accept_rate").unwrap().as_integer(),
            Some(7)
        );
        // The mode from the file alone: nothing is dropped (the plan reports the conflict).
        let mut doc = before.clone();
        assert!(drop_replaced(&before, &mut doc, &[]).is_empty());
    }
}
