//! Numbers for people: counts with thousands separators, seconds and milliseconds in the forms
//! the tables, sentences and plot labels use. One place, so a count reads the same in the
//! terminal, the report and a chart.

use std::time::Duration;

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `-1`, `27,115`.
pub fn signed(i: i64) -> String {
    if i < 0 {
        format!("-{}", thousands(i.unsigned_abs()))
    } else {
        thousands(i as u64)
    }
}

/// A duration in seconds for settings: `0.5 s`, `3 s`, `1.25 s`.
pub fn seconds(d: Duration) -> String {
    let s = format!("{:.3}", d.as_secs_f64());
    format!("{} s", s.trim_end_matches('0').trim_end_matches('.'))
}

/// Seconds for prose: `0.08 s`, `3.1 s`, `12 s`.
pub fn prose_secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.0} s")
    }
}

/// Milliseconds for prose: `0.36 ms`, `131 ms`, `2.06 s`.
pub fn prose_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.2} ms")
    }
}

/// Milliseconds in a terminal or CSV cell: `0.36`, `131`; `-` when there is no value.
pub fn cell_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_times_read_as_in_the_reports() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(signed(-27_115), "-27,115");
        assert_eq!(seconds(Duration::from_millis(1250)), "1.25 s");
        assert_eq!(seconds(Duration::from_secs(3)), "3 s");
        assert_eq!(prose_secs(0.083), "0.08 s");
        assert_eq!(prose_secs(12.4), "12 s");
        assert_eq!(prose_ms(2060.0), "2.06 s");
        assert_eq!(prose_ms(131.2), "131 ms");
        assert_eq!(prose_ms(0.36), "0.36 ms");
        assert_eq!(cell_ms(Some(131.4)), "131");
        assert_eq!(cell_ms(Some(0.364)), "0.36");
        assert_eq!(cell_ms(None), "-");
    }
}
