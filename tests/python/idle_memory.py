"""Idle memory per connection of a broker: opens N MQTT 3.1.1 connections (CONNECT, keep-alive
60 s) and reports the broker's RSS growth per connection.

    python3 tests/python/idle_memory.py PORT N BROKER_PID

Raise the open-file limit first (ulimit -n) for large N, for this shell and the broker's.
"""
import socket, sys, time, os
port=int(sys.argv[1]); n=int(sys.argv[2]); pid=int(sys.argv[3])
def rss(): 
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
before=rss(); socks=[]
for i in range(n):
    s=socket.create_connection(("127.0.0.1",port))
    cid=f"idle-{i}".encode()
    body=b"\x00\x04MQTT\x04\x02\x00\x3c"+len(cid).to_bytes(2,"big")+cid
    s.sendall(bytes([0x10,len(body)])+body); socks.append(s)
for s in socks: s.recv(4)
time.sleep(1)
after=rss()
print(f"port {port}: {n} idle clients: RSS {before} kB -> {after} kB = {(after-before)*1024/n:.0f} bytes/connection")
