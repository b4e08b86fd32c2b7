//! How long the lab's two hosts take to stand up and tear down without `[link]` emulation
//! (#10, goal 6: at most 50 ms): [`Topology::build`] on veth with no sysctls, then its drop,
//! N times (default 20). Prints the median and the worst of each, in ms. Needs root.
//!
//!   cargo run --release --example hosts_setup [N]

use std::time::Instant;

use backlog_lab::family::Family;
use backlog_lab::topo::{LinkPlan, Topology};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(20, |a| a.parse().expect("N: a number"));
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let topo = Topology::build(
            &Default::default(),
            &Default::default(),
            &LinkPlan::default(),
            Family::default(),
            Some(1000),
        )
        .expect("the hosts could not be built (run as root)");
        up.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        drop(topo);
        down.push(t.elapsed().as_secs_f64() * 1e3);
    }
    for (what, v) in [("setup", &mut up), ("teardown", &mut down)] {
        v.sort_by(f64::total_cmp);
        println!(
            "{what}: median {:.1} ms, worst {:.1} ms ({n} times)",
            v[v.len() / 2],
            v[v.len() - 1]
        );
    }
}
