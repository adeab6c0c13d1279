#!/usr/bin/env python3
"""HTTP benchmark: dart:io's HttpServer on io_uring (HttpServer.listenOn(IoUringServerSocket),
bench/dart/iouring_http_server.dart) against the same server on dart:io sockets (HttpServer.bind,
bench/dart/dartio_http_server.dart, which imports nothing of the package), same Dart VM, same wrk
client.

  tool/bench_http.py [--connections 50,500] [--paths /plain,/4k] [--seconds 5] [--rounds 3] [--tls]

Each cell (connections x response) runs every server once per round, alternating which one goes
first, keep-alive, one wrk thread on 127.0.0.1. It prints medians and [min-max] ranges of requests
per second and of server CPU time per request (utime+stime of the server process over the run),
the ratios ours/dart:io, and the load client's own CPU share (near 100% means wrk was the limit).
With --tls both serve HTTPS with one ECDSA P-256 certificate made by `openssl` for the run
(ours: HttpServer.listenOn(IoUringSecureServerSocket); dart:io: HttpServer.bindSecure) and wrk
speaks TLS. Every run is a new wrk process, so its connections' full handshakes (500 at 500
connections) fall inside the measured window for both servers: use longer --seconds to weigh
them less.
This is a benchmark, not a test: it exits non-zero only if a build or a run fails.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Each implementation's server, its own program: the dart:io one imports nothing of the
# package, whose kernel a JIT VM would load for it too.
IMPLS = ('iouring', 'dartio')
SERVERS = {impl: os.path.join(ROOT, 'bench', 'dart', f'{impl}_http_server.dart') for impl in IMPLS}
TICKS = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    """utime + stime of process pid (all its threads), in seconds."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_server(kernel, impl, tls):
    """The server process and its port; `tls`: (chain, key) PEM paths, or None."""
    config = os.path.join(ROOT, '.dart_tool', 'package_config.json')
    cmd = ['dart', f'--packages={config}', kernel, '--port', '0']
    if tls:
        cmd += ['--cert', tls[0], '--key', tls[1]]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.match(r'listening on [^:]+:(\d+)', line)
        if m:
            return proc, int(m.group(1))
    proc.kill()
    raise SystemExit(f'bench_http: the {impl} server did not start')


def vm_pid(proc):
    """The VM process under the `dart` script (the kit's dart is a Python wrapper)."""
    try:
        out = subprocess.run(['pgrep', '-P', str(proc.pid)], capture_output=True, text=True).stdout
        children = [int(p) for p in out.split()]
    except OSError:
        children = []
    return children[0] if children else proc.pid


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def make_certificate(directory):
    """A self-signed ECDSA P-256 certificate for 127.0.0.1: (chain, key) PEM paths."""
    chain, key = os.path.join(directory, 'cert.pem'), os.path.join(directory, 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                    '-nodes', '-days', '2', '-subj', '/CN=localhost',
                    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
                    '-keyout', key, '-out', chain], check=True, capture_output=True)
    return chain, key


def run_wrk(port, path, connections, seconds, scheme):
    """Requests per second and wrk's own CPU share of one core."""
    cmd = ['wrk', '-t1', f'-c{connections}', f'-d{seconds}s', f'{scheme}://127.0.0.1:{port}{path}']
    before = os.times()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after = os.times()
    m = re.search(r'Requests/sec:\s+([\d.]+)', out)
    errors = re.search(r'Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)', out)
    if not m:
        raise SystemExit(f'bench_http: cannot read wrk output:\n{out}')
    client_cpu = ((after.children_user - before.children_user) +
                  (after.children_system - before.children_system)) / seconds
    return float(m.group(1)), client_cpu, errors.group(0) if errors else None


def fmt(values, spec):
    return f'{statistics.median(values):{spec}} [{min(values):{spec}}-{max(values):{spec}}]'


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--connections', default='50,500')
    ap.add_argument('--paths', default='/plain,/4k')
    ap.add_argument('--seconds', type=int, default=5)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--tls', action='store_true', help='HTTPS instead of HTTP')
    args = ap.parse_args()
    for tool in ('wrk', 'dart') + (('openssl',) if args.tls else ()):
        if shutil.which(tool) is None:
            raise SystemExit(f'bench_http: `{tool}` is not on PATH (wrk: apt-get install wrk)')

    triple = {'linux_ia32': 'i686-unknown-linux-gnu', 'linux_x64': 'x86_64-unknown-linux-gnu',
              'linux_arm64': 'aarch64-unknown-linux-gnu'}
    version = subprocess.run(['dart', '--version'], capture_output=True, text=True).stdout
    abi = re.search(r'"(linux_\w+)"', version)
    if not abi or abi.group(1) not in triple:
        raise SystemExit(f'bench_http: unknown Dart platform: {version}')
    subprocess.run(['bash', 'tool/cargo_for.sh', triple[abi.group(1)], 'build', '--release', '-q',
                    '-p', 'iouring_transport'], cwd=ROOT, check=True)
    subprocess.run(['dart', 'pub', 'get'], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    tmp = tempfile.mkdtemp(prefix='bench_http_')
    kernels = {impl: os.path.join(tmp, f'{impl}_http_server.dill') for impl in IMPLS}
    for impl in IMPLS:
        subprocess.run(['dart', 'compile', 'kernel', SERVERS[impl], '-o', kernels[impl]],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    tls = make_certificate(tmp) if args.tls else None
    scheme = 'https' if tls else 'http'
    print(f'{version.strip()}; {os.cpu_count()} cores; {scheme}; wrk -t1, keep-alive, '
          f'{args.seconds} s per run, {args.rounds} rounds', flush=True)

    rows = []
    for connections in [int(c) for c in args.connections.split(',')]:
        for path in args.paths.split(','):
            results = {impl: {'rps': [], 'us': [], 'client': []} for impl in IMPLS}
            for round_ in range(args.rounds):
                order = IMPLS if round_ % 2 == 0 else tuple(reversed(IMPLS))
                for impl in order:
                    proc, port = start_server(kernels[impl], impl, tls)
                    try:
                        pid = vm_pid(proc)
                        run_wrk(port, path, connections, 1, scheme)  # warm-up: JIT, connections
                        cpu0 = cpu_seconds(pid)
                        rps, client, errors = run_wrk(port, path, connections, args.seconds, scheme)
                        cpu1 = cpu_seconds(pid)
                    finally:
                        stop_server(proc)
                    if errors:
                        print(f'  {impl} c={connections} {path}: {errors}', flush=True)
                    if rps == 0:
                        raise SystemExit(f'bench_http: the {impl} server answered no request '
                                         f'(c={connections} {path})')
                    results[impl]['rps'].append(rps)
                    results[impl]['us'].append((cpu1 - cpu0) / (rps * args.seconds) * 1e6)
                    results[impl]['client'].append(client * 100)
            rows.append((connections, path, results))
            ours, theirs = results['iouring'], results['dartio']
            print(f'c={connections:<4} {path:<6}  ours {fmt(ours["rps"], ".0f")} req/s '
                  f'{fmt(ours["us"], ".1f")} us/req | dart:io {fmt(theirs["rps"], ".0f")} req/s '
                  f'{fmt(theirs["us"], ".1f")} us/req', flush=True)

    print()
    print('conns  path    ours req/s            dart:io req/s         ours/dart:io  '
          'ours us/req        dart:io us/req     cpu ours/dart:io  wrk cpu% ours/dart:io')
    for connections, path, r in rows:
        ours, theirs = r['iouring'], r['dartio']
        print(f'{connections:>5}  {path:<6}  {fmt(ours["rps"], ".0f"):<21} {fmt(theirs["rps"], ".0f"):<21} '
              f'{statistics.median(ours["rps"]) / statistics.median(theirs["rps"]):>11.2f}x  '
              f'{fmt(ours["us"], ".1f"):<18} {fmt(theirs["us"], ".1f"):<18} '
              f'{statistics.median(ours["us"]) / statistics.median(theirs["us"]):>15.2f}x  '
              f'{statistics.median(ours["client"]):>5.0f} / {statistics.median(theirs["client"]):.0f}')
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
