//! The kernel's own ceiling for short connections, for `scripts/bench-storm.sh`: THREADS
//! blocking loops of connect, send the lab's request, read to the end, close (a FIN, or an RST
//! with `rst`), for SECONDS, against ADDR. No scheduling, no records, no observers: what the
//! client's and server's kernels and the server can do, which no generator can beat.
//!
//!   connect_ceiling ADDR SECONDS [fin|rst] [THREADS]   (run it inside the client namespace)
//!
//! Prints `ok N errors M seconds S rate R` on one line.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: connect_ceiling ADDR SECONDS [fin|rst] [THREADS]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("ADDR: ip:port");
    let secs: f64 = args[2].parse().expect("SECONDS: a number");
    let rst = args.get(3).map(String::as_str) == Some("rst");
    let threads: usize = args
        .get(4)
        .map_or(2, |t| t.parse().expect("THREADS: a number"));
    let request = backlog_lab::wire::request(&backlog_lab::wire::Talk::ClientFirst {
        request_bytes: backlog_lab::wire::REQUEST.len() as u32,
    });
    let (ok, errors) = (AtomicU64::new(0), AtomicU64::new(0));
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let mut one = || -> std::io::Result<()> {
                        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
                        c.set_nodelay(true)?;
                        c.write_all(&request)?;
                        while c.read(&mut buf)? > 0 {}
                        if rst {
                            socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO))?;
                        }
                        Ok(())
                    };
                    match one() {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    let took = started.elapsed().as_secs_f64();
    let ok = ok.into_inner();
    println!(
        "ok {ok} errors {} seconds {took:.2} rate {:.0}",
        errors.into_inner(),
        ok as f64 / took
    );
}
