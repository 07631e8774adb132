#!/usr/bin/env python3
"""A steady UDP flow, counted at both ends (tests/node: traffic through a chain while the agent
DaemonSet rolls).

  udp_flow.py receive ADDR OUT PORT...   count datagrams per port until SIGTERM, then write
                                         {"PORT": count, ...} to OUT (OUT.ready once bound)
  udp_flow.py send ADDR STOP OUT PORT... send one datagram to each port in turn every 2 ms until
                                         the file STOP exists, then write {"PORT": sent} to OUT
"""
import json
import os
import select
import signal
import socket
import sys
import time


def write(path, counts):
    with open(path + ".tmp", "w") as f:
        json.dump(counts, f)
    os.rename(path + ".tmp", path)


def receive(addr, out, ports):
    socks = {}
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((addr, int(p)))
        s.setblocking(False)
        socks[s] = p
    counts = {p: 0 for p in ports}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    open(out + ".ready", "w").close()
    while not stop:
        try:
            ready, _, _ = select.select(list(socks), [], [], 0.2)
        except InterruptedError:
            continue
        for s in ready:
            while True:
                try:
                    s.recv(2048)
                except BlockingIOError:
                    break
                counts[socks[s]] += 1
    write(out, counts)


def send(addr, stop, out, ports):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    counts = {p: 0 for p in ports}
    seq = 0
    while not os.path.exists(stop):
        for p in ports:
            s.sendto(b"%d" % seq, (addr, int(p)))
            counts[p] += 1
        seq += 1
        time.sleep(0.002)
    write(out, counts)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "receive":
        receive(args[0], args[1], args[2:])
    elif mode == "send":
        send(args[0], args[1], args[2], args[3:])
    else:
        sys.exit(__doc__)
