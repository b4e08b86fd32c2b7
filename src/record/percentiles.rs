//! Latency percentiles: the one histogram every summary figure in milliseconds comes from.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latency percentiles in milliseconds; all null when nothing was measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Percentiles {
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Percentiles {
    /// From microsecond samples.
    pub fn of(samples: impl Iterator<Item = u64>) -> Percentiles {
        let mut s = Samples::default();
        samples.for_each(|us| s.add(us));
        s.percentiles()
    }
}

/// Microsecond samples for [`Percentiles`]; the histogram is made on the first sample (most
/// outcomes never occur).
#[derive(Debug, Default)]
pub struct Samples(Option<Box<Histogram<u64>>>);

impl Samples {
    pub fn add(&mut self, us: u64) {
        self.0
            .get_or_insert_with(|| {
                Box::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"))
            })
            .saturating_record(us.max(1));
    }

    pub fn percentiles(&self) -> Percentiles {
        let Some(h) = self.0.as_deref().filter(|h| !h.is_empty()) else {
            return Percentiles::default();
        };
        let ms = |us: u64| Some(us as f64 / 1000.0);
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}
