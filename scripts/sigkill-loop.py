#!/usr/bin/env python3
"""SIGKILL a lab at random instants, N times (veth and the delay line in turn, the process alone
and its whole process group in turn), and count what each kill left behind:

  - the lab's network namespaces still alive 1 s after the kill (each one the lab held is given
    an id in an observer namespace of this script's own; the kernel drops the id with the
    namespace, so even a namespace that only its sockets hold is seen),
  - the machine's TCP orphans (/proc/net/sockstat) above where they were,
  - trace instances of the lab (in a private tracefs mount), warden processes, subnet locks
    still held.

Then starts pairs of labs together (--concurrent) and checks that they never share an address.

    sudo scripts/sigkill-loop.py [N] [PAIRS]        (defaults 50 and 5; needs root)
"""

import ctypes
import glob
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("BIN", os.path.join(os.path.dirname(__file__), "..", "target/release/backlog-lab"))
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def attr(kind, payload):
    n = 4 + len(payload)
    return struct.pack("HH", n, kind) + payload + b"\0" * ((4 - n % 4) % 4)


class Observer:
    """An observer namespace; watched namespaces get an nsid in it, which lives as they do."""

    def __init__(self):
        host = os.open("/proc/self/ns/net", os.O_RDONLY)
        if libc.unshare(CLONE_NEWNET) != 0:
            sys.exit("unshare(CLONE_NEWNET) failed: run as root")
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        self.sock.bind((0, 0))
        libc.setns(host, CLONE_NEWNET)
        os.close(host)
        self.host_ino = os.stat("/proc/self/ns/net").st_ino

    def request(self, kind, flags, attrs=b""):
        body = b"\0\0\0\0" + attrs
        self.sock.send(struct.pack("IHHII", 16 + len(body), kind, flags, 1, 0) + body)
        count = 0
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                n, t = struct.unpack_from("IH", data, off)
                if t in (2, 3):  # NLMSG_ERROR (the ack), NLMSG_DONE
                    return count
                count += 1
                off += (n + 3) & ~3

    def watch(self, pid, seen):
        for fd in glob.glob(f"/proc/{pid}/fd/*"):
            try:
                if not os.readlink(fd).startswith("net:"):
                    continue
                ino = os.stat(fd).st_ino
                if ino == self.host_ino or ino in seen:
                    continue
                f = os.open(fd, os.O_RDONLY)
            except OSError:
                continue
            seen.add(ino)
            self.request(88, 1 | 4, attr(1, struct.pack("i", -1)) + attr(3, struct.pack("I", f)))
            os.close(f)

    def alive(self):
        return self.request(90, 1 | 0x300)


def orphans():
    words = next(l for l in open("/proc/net/sockstat") if l.startswith("TCP:")).split()
    return int(words[words.index("orphan") + 1])


def trace_instances():
    out = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         "mount -t tracefs nodev /sys/kernel/tracing && ls /sys/kernel/tracing/instances"],
        capture_output=True, text=True)
    return [n for n in out.stdout.split() if n.startswith("backlog-lab-")]


def wardens():
    out = subprocess.run(["pgrep", "-f", "netns-warden|trace-janitor"], capture_output=True, text=True)
    return len(out.stdout.split())


def locks_held():
    held = 0
    for f in glob.glob("/run/backlog-lab/net-*.lock"):
        if subprocess.run(["flock", "-n", "-s", f, "true"]).returncode != 0:
            held += 1
    return held


def storm(out, link):
    return [BIN, "run", "envoy-somaxconn-128", "--quiet", "--out", out,
            "--set", "client.duration=20s", "--set", "client.connections=40000",
            "--set", link]


def kills(n, obs, tmp):
    rows = []
    for i in range(n):
        link = "link.rtt=0ms" if i % 2 == 0 else "link.rtt=20ms"
        group = (i // 2) % 2 == 1
        at = random.uniform(0.0, 4.0)
        before = orphans()
        out = os.path.join(tmp, f"kill-{i}")
        p = subprocess.Popen(storm(out, link), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        seen = set()
        t0 = time.time()
        while time.time() - t0 < at:
            obs.watch(p.pid, seen)
            time.sleep(0.01)
        obs.watch(p.pid, seen)
        if group:
            os.killpg(p.pid, signal.SIGKILL)
        else:
            p.kill()
        p.wait()
        killed = time.time()
        lived = None
        while obs.alive() > 0:
            if time.time() - killed > 300:
                lived = float("inf")
                break
            time.sleep(0.02)
        lived = lived if lived is not None else time.time() - killed
        time.sleep(1.0)
        row = dict(i=i, link="veth" if link.endswith("=0ms") else "tun", group=group, at=round(at, 2),
                   namespaces=len(seen), ns_lived_s=round(lived, 2), orphans=orphans() - before,
                   traces=len(trace_instances()), wardens=wardens(), locks=locks_held())
        print(json.dumps(row), flush=True)
        rows.append(row)
        shutil.rmtree(out, ignore_errors=True)
    return rows


def pairs(n, tmp):
    shared = 0
    for i in range(n):
        outs = [os.path.join(tmp, f"pair-{i}-{k}") for k in (0, 1)]
        ps = [subprocess.Popen([BIN, "run", "envoy-somaxconn-128", "--quiet", "--concurrent", "--out", o,
                                "--set", "client.connections=2000", "--set", "client.duration=1s",
                                "--set", "expect="], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
              for o in outs]
        for p in ps:
            p.wait()
        env = [json.load(open(os.path.join(o, "environment.json"))) for o in outs]
        addrs = [{e["server_address"].rsplit(":", 1)[0], e["client_address"]} for e in env]
        both = addrs[0] & addrs[1]
        shared += bool(both)
        print(json.dumps(dict(pair=i, a=sorted(addrs[0]), b=sorted(addrs[1]), shared=sorted(both))), flush=True)
    return shared


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    npairs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    if not os.path.exists(BIN):
        subprocess.run(["cargo", "build", "--release", "-q"], check=True)
    obs = Observer()
    tmp = tempfile.mkdtemp()
    try:
        rows = kills(n, obs, tmp)
        shared = pairs(npairs, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    watched = [r for r in rows if r["namespaces"]]
    worst = max((r["ns_lived_s"] for r in watched), default=0)
    left = sum(1 for r in rows if r["orphans"] > 0 or r["traces"] or r["wardens"] or r["locks"])
    print(f"{n} kills ({len(watched)} after the namespaces existed): namespaces outlived the lab by "
          f"at most {worst:.2f} s; kills that left orphans, trace instances, wardens or held locks: "
          f"{left}; pairs sharing an address: {shared} of {npairs}")
    sys.exit(1 if worst > 1 or left or shared else 0)


if __name__ == "__main__":
    main()
