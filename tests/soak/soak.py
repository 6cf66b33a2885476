#!/usr/bin/python3
# make soak: ferryd under traffic at the ceiling for DURATION seconds, with
# clients attaching and dying and the configuration reloaded all along; at the
# end, every datagram sent is delivered or in a named drop counter, the UMEM
# frames balance and ferryd's resident memory grew less than 1 MiB.
# Method, counters and figures: tests/soak/README.md.
#
# Usage (root): tests/soak/soak.py [--duration S] [--reload-every S] [--out FILE] [--keep-logs DIR] [--seed N]
#   FERRY_BUILD  build directory with ferryd, ferryctl, examples/ferry-echo and bench/xdpgen (default: build)
#   FERRYD       the ferryd binary (default: $FERRY_BUILD/ferryd)
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PROG = 'soak'
NS_RE = re.compile(r'^fsoak-([0-9]+)-(host|peer)$')
H4, P4 = '198.18.0.1', '198.18.0.2'
HIF, PIF = 'fh0', 'fp0'
QUEUES = 3
RSS_LIMIT_KB = 1024
# One generator per service port, each on its own queue (on veth, a frame sent on
# the peer's TX queue q arrives on the host's RX queue q): (queue, service, port, payload bytes).
FLOWS = [(0, 'a', 7001, 18), (1, 'b', 7002, 200), (2, 'c', 7003, 1000)]
CLIENTS_PER_SERVICE = 3  # live clients of a service beyond which each new one replaces an old one


def log(msg):
    print(f'{PROG}: {msg}', file=sys.stderr, flush=True)


class Failed(Exception):
    pass


def run(*argv, check=True, timeout=30, ns=None):
    if ns:
        argv = ('ip', 'netns', 'exec', ns) + argv
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failed(f'{" ".join(argv)}: no answer within {timeout} s')
    if check and r.returncode:
        raise Failed(f'{" ".join(argv)}: exit {r.returncode}: {r.stderr.strip()}')
    return r


class Soak:
    def __init__(self, a):
        self.a = a
        b = os.path.abspath(os.environ.get('FERRY_BUILD', 'build'))
        self.ferryd = os.environ.get('FERRYD', f'{b}/ferryd')
        self.ferryctl = f'{b}/ferryctl'
        self.echo = f'{b}/examples/ferry-echo'
        self.xdpgen = f'{b}/bench/xdpgen'
        for p in (self.ferryd, self.ferryctl, self.echo, self.xdpgen):
            if not os.access(p, os.X_OK):
                raise Failed(f'no executable {p} (build it: make soak builds what it needs)')
        self.h = f'fsoak-{os.getpid()}-host'
        self.p = f'fsoak-{os.getpid()}-peer'
        self.t = tempfile.mkdtemp(prefix='ferry-soak.')
        self.sock = f'{self.t}/ferryd.sock'
        self.conf = f'{self.t}/ferryd.conf'
        self.rnd = random.Random(a.seed)
        self.fproc = None  # ferryd's Popen
        self.gens = []
        self.clients = []  # every client started: dicts
        self.fails = []
        self.rss = []  # (t, VmRSS, RssAnon, RssFile, RssShmem) kB
        self.timeline = []  # every 5 s: t, VmRSS kB, clients, rx_packets, rx_client_full, frames_user
        self.samples = 0
        self.reloads = {'ok': 0, 'failed': 0}
        self.state = {'c': True, 'b_rr': False}  # the configuration now; initially a, b (hash), c
        self.xdp_mode = 'native'

    # ---- failures and cleanup ------------------------------------------------------
    def fail(self, what):
        self.fails.append(what)
        log(f'FAILED: {what}')

    def cleanup(self):
        for c in self.clients:
            if c['proc'].poll() is None:
                c['proc'].kill()
        for p in self.gens + ([self.fproc] if self.fproc else []):
            if p.poll() is None:
                p.kill()
        for p in [c['proc'] for c in self.clients] + self.gens + ([self.fproc] if self.fproc else []):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for ns in (self.h, self.p):
            self.remove_ns(ns)
        if self.a.keep_logs:
            shutil.copytree(self.t, self.a.keep_logs, dirs_exist_ok=True)
        shutil.rmtree(self.t, ignore_errors=True)

    @staticmethod
    def remove_ns(ns):
        r = run('ip', 'netns', 'pids', ns, check=False)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        run('ip', 'netns', 'del', ns, check=False)

    # Namespaces of runs that died without cleaning up: their driver is gone.
    def sweep(self):
        r = run('ip', 'netns', 'list', check=False)
        for line in r.stdout.splitlines():
            ns = line.split()[0] if line.split() else ''
            m = NS_RE.match(ns)
            if not m:
                continue
            owner = int(m.group(1))
            try:
                with open(f'/proc/{owner}/cmdline', 'rb') as f:
                    if b'soak.py' in f.read():
                        continue  # a soak running right now
            except OSError:
                pass
            log(f'removing {ns}, left by a run that died')
            self.remove_ns(ns)

    # ---- the testbed -----------------------------------------------------------------
    def setup(self):
        for ns in (self.h, self.p):
            run('ip', 'netns', 'add', ns)
            run('ip', '-n', ns, 'link', 'set', 'lo', 'up')
            # No IPv6: no neighbour discovery or router solicitations, only our datagrams on the pair.
            run('sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1',
                ns=ns)
        q = ('numtxqueues', str(QUEUES), 'numrxqueues', str(QUEUES))
        run('ip', '-n', self.h, 'link', 'add', HIF, *q, 'type', 'veth', 'peer', 'name', PIF, 'netns', self.p, *q)
        run('ip', '-n', self.h, 'addr', 'add', f'{H4}/24', 'dev', HIF)
        run('ip', '-n', self.p, 'addr', 'add', f'{P4}/24', 'dev', PIF)
        run('ip', '-n', self.h, 'link', 'set', HIF, 'up')
        run('ip', '-n', self.p, 'link', 'set', PIF, 'up')
        self.hmac = run('cat', f'/sys/class/net/{HIF}/address', ns=self.h).stdout.strip()
        pmac = run('cat', f'/sys/class/net/{PIF}/address', ns=self.p).stdout.strip()
        run('ip', '-n', self.h, 'neigh', 'replace', P4, 'lladdr', pmac, 'dev', HIF, 'nud', 'permanent')
        run('ip', '-n', self.p, 'neigh', 'replace', H4, 'lladdr', self.hmac, 'dev', PIF, 'nud', 'permanent')

    def write_conf(self):
        s = self.state
        text = (f'[daemon]\ninterface = {HIF}\nqueues = {QUEUES}\nmode = xdp\nxdp-mode = {self.xdp_mode}\n'
                f'control = {self.sock}\nrun-dir = {self.t}\n\n'
                f'[service a]\nlisten = {H4}:7001\nfanout = round-robin\nhand-off = zero-copy\n\n'
                f'[service b]\nlisten = {H4}:7002\nfanout = {"round-robin" if s["b_rr"] else "hash"}\n'
                f'rx-slots = {512 if s["b_rr"] else 1024}\n')
        if s['c']:
            text += f'\n[service c]\nlisten = {H4}:7003\n'
        with open(self.conf + '.new', 'w') as f:
            f.write(text)
        os.rename(self.conf + '.new', self.conf)

    def start_ferryd(self):
        for mode in ('native', 'skb'):
            self.xdp_mode = mode
            self.write_conf()
            out = open(f'{self.t}/ferryd.out', 'w')
            err = open(f'{self.t}/ferryd.err', 'w')
            self.fproc = subprocess.Popen(['ip', 'netns', 'exec', self.h, self.ferryd, '--config', self.conf],
                                          stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            out.close()
            err.close()
            end = time.monotonic() + 15
            while time.monotonic() < end and self.fproc.poll() is None:
                if 'ferryd: ready' in self.ferryd_log():
                    break
                time.sleep(0.1)
            if self.fproc.poll() is None and 'ferryd: ready' in self.ferryd_log():
                self.fpid = self.fproc.pid
                m = re.search(r'AF_XDP on .*', self.ferryd_log())
                self.af_xdp_line = m.group(0) if m else ''
                return
            log(f'ferryd in xdp-mode {mode} did not start: {self.ferryd_log()[-400:]}')
            if self.fproc.poll() is None:
                self.fproc.kill()
            self.fproc.wait()
            self.fproc = None
        raise Failed('ferryd did not start in xdp mode, native or skb')

    def ferryd_log(self):
        with open(f'{self.t}/ferryd.err', errors='replace') as f:
            return f.read()

    # ---- reading counters ----------------------------------------------------------------
    def ctl(self, *verb, timeout=10):
        return run(self.ferryctl, '--socket', self.sock, *verb, check=False, timeout=timeout)

    def stats(self):
        r = self.ctl('--json', 'stats')
        if r.returncode:
            raise Failed(f'ferryctl --json stats: exit {r.returncode}: {r.stderr.strip()}')
        return json.loads(r.stdout)

    def kernel_counters(self):
        k = {}
        for line in run('ethtool', '-S', HIF, ns=self.h).stdout.splitlines():
            m = re.match(r'\s*rx_queue_[0-9]+_(xdp_packets|drops|xdp_redirect|xdp_drops|xdp_tx):\s*([0-9]+)', line)
            if m:
                k['veth_' + m.group(1)] = k.get('veth_' + m.group(1), 0) + int(m.group(2))
        for ns, ifn, side in ((self.p, PIF, 'peer'), (self.h, HIF, 'host')):
            for c in ('tx_packets', 'tx_dropped', 'rx_packets', 'rx_dropped'):
                k[f'{side}_{c}'] = int(run('cat', f'/sys/class/net/{ifn}/statistics/{c}', ns=ns).stdout)
        snmp = run('cat', '/proc/net/snmp', ns=self.h).stdout.splitlines()
        for i in range(0, len(snmp) - 1, 2):
            names, vals = snmp[i].split(), snmp[i + 1].split()
            if names[0] in ('Ip:', 'Udp:'):
                for n, v in zip(names[1:], vals[1:]):
                    k[names[0][:-1].lower() + '_' + n] = int(v)
        return k

    def sample_rss(self, t0):
        try:
            with open(f'/proc/{self.fpid}/status') as f:
                st = dict(line.split(':', 1) for line in f if ':' in line)
        except OSError:
            self.fail(f'ferryd (pid {self.fpid}) is gone')
            raise Failed('ferryd died')
        kb = [int(st.get(k, '0 kB').split()[0]) for k in ('VmRSS', 'RssAnon', 'RssFile', 'RssShmem')]
        self.rss.append((round(time.monotonic() - t0, 1), *kb))
        return kb[0]

    def check_frames(self, st, when, drained=False):
        c = st['counters']
        parts = c['frames_free'] + c['frames_kernel'] + c['frames_user'] + c['frames_tx']
        if parts != c['frames_total']:
            self.fail(f'{when}: frames free+kernel+user+tx = {parts}, total {c["frames_total"]}')
        if c['bad_desc']:
            self.fail(f'{when}: bad_desc = {c["bad_desc"]}')
        if drained and (c['frames_user'] or c['frames_tx']):
            self.fail(f'{when}: with no client and no traffic, frames_user={c["frames_user"]} '
                      f'frames_tx={c["frames_tx"]}, expected 0')
        self.samples += 1

    # ---- clients -------------------------------------------------------------------------
    def start_client(self, svc):
        zc = svc == 'a' and self.rnd.random() < 0.5
        n = len(self.clients)
        out = f'{self.t}/client-{n}.out'
        argv = ['ip', 'netns', 'exec', self.h, self.echo, '--count', '--control', self.sock]
        argv += ['--zero-copy'] if zc else []
        with open(out, 'w') as f:
            p = subprocess.Popen(argv + [svc], stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.clients.append({'n': n, 'svc': svc, 'zc': zc, 'proc': p, 'out': out, 'end': None})

    def stop_client(self, c, sig):
        c['end'] = 'SIGKILL' if sig == signal.SIGKILL else 'SIGTERM'
        c['proc'].send_signal(sig)

    def live(self, svc=None):
        return [c for c in self.clients if c['end'] is None and c['proc'].poll() is None
                and (svc is None or c['svc'] == svc)]

    def reap(self):
        for c in self.clients:
            if c['end'] is None and c['proc'].poll() is not None:
                c['end'] = 'itself'  # its service was removed, or it was refused

    def churn(self, rot):
        self.reap()
        svcs = ['a', 'b'] + (['c'] if self.state['c'] else [])
        svc = svcs[rot % len(svcs)]
        self.start_client(svc)
        old = self.live(svc)[:-1]
        if len(old) >= CLIENTS_PER_SERVICE:
            self.stop_client(self.rnd.choice(old), signal.SIGKILL if self.rnd.random() < 0.4 else signal.SIGTERM)

    def drain_clients(self, why):
        self.reap()
        for c in self.live():
            self.stop_client(c, signal.SIGTERM)
        for c in self.clients:
            try:
                c['proc'].wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.fail(f'{why}: client {c["n"]} ({c["svc"]}) did not end within 10 s of SIGTERM')
                c['proc'].kill()
                c['proc'].wait()
        end = time.monotonic() + 10
        while time.monotonic() < end:
            st = self.stats()
            if not st['clients']:
                return st
            time.sleep(0.2)
        self.fail(f'{why}: ferryd still lists {len(st["clients"])} clients 10 s after every client ended')
        return st

    # ---- reloads -------------------------------------------------------------------------
    def reload(self, k):
        if k % 2:
            self.state['c'] = not self.state['c']
        else:
            self.state['b_rr'] = not self.state['b_rr']
        self.write_conf()
        r = self.ctl('reload', timeout=20)
        if r.returncode:
            self.reloads['failed'] += 1
            self.fail(f'reload {k}: ferryctl exit {r.returncode}: {(r.stdout + r.stderr).strip()}')
        else:
            self.reloads['ok'] += 1

    def restore_conf(self):
        if self.state != {'c': True, 'b_rr': False}:
            self.state = {'c': True, 'b_rr': False}
            self.write_conf()
            if self.ctl('reload', timeout=20).returncode:
                self.fail('the reload back to the first configuration failed')

    # ---- the run ---------------------------------------------------------------------------
    def start_generators(self, duration):
        for q, svc, port, size in FLOWS:
            out = open(f'{self.t}/gen-{svc}.out', 'w')
            self.gens.append(subprocess.Popen(
                ['ip', 'netns', 'exec', self.p, self.xdpgen, '-i', PIF, '--dst-mac', self.hmac,
                 '--src', f'{P4}:{5000 + q}', '--dst', f'{H4}:{port}', '--size', str(size),
                 '--queue', str(q), '--duration', str(duration)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            out.close()

    def soak(self):
        a = self.a
        warm = min(60.0, max(10.0, a.duration / 10))
        t0 = time.monotonic()
        self.start_ferryd()
        log(f'ferryd {self.fpid}: {self.af_xdp_line}')
        self.st0 = self.stats()
        self.k0 = self.kernel_counters()
        self.start_generators(a.duration)
        next_churn = next_reload = next_stats = time.monotonic()
        next_rss = time.monotonic() + 1
        rot = k = 0
        baseline = False
        while any(g.poll() is None for g in self.gens):
            now = time.monotonic()
            if self.fproc.poll() is not None:
                raise Failed(f'ferryd exited ({self.fproc.returncode}) during the soak')
            if now - t0 > a.duration + 60:
                raise Failed(f'the generators were still running {now - t0:.0f} s after the start')
            if not baseline and now - t0 >= warm:
                # The baseline: after the warm-up, with no client and the first configuration,
                # as at the end (traffic still flowing here: its frames are already in use).
                self.restore_conf()
                self.drain_clients('warm-up')
                time.sleep(1)
                self.rss_base = self.sample_rss(t0)
                log(f'warm-up done at {now - t0:.0f} s: VmRSS {self.rss_base} kB with no client')
                baseline = True
                next_reload = time.monotonic() + a.reload_every
            if now >= next_churn:
                self.churn(rot)
                rot += 1
                next_churn = now + self.rnd.uniform(0.3, 0.7)
            if now >= next_reload:
                k += 1
                self.reload(k)
                next_reload = now + a.reload_every
            if now >= next_rss:
                self.sample_rss(t0)
                next_rss = now + 1
            if now >= next_stats:
                st = self.stats()
                self.check_frames(st, f'at {now - t0:.0f} s')
                c = st['counters']
                self.timeline.append([round(now - t0), self.rss[-1][1] if self.rss else 0, len(st['clients']),
                                      c['rx_packets'], c['rx_client_full'], c['frames_user']])
                next_stats = now + 5
            time.sleep(0.05)
        if not baseline:
            raise Failed(f'the generators ended before the warm-up ({warm:.0f} s) was over')
        # The end: traffic stopped, the first configuration, every client gone.
        self.restore_conf()
        time.sleep(1)
        st = self.drain_clients('the end')
        time.sleep(1)
        self.rss_end = self.sample_rss(t0)
        self.st1 = self.stats()
        self.check_frames(self.st1, 'the end', drained=True)
        self.k1 = self.kernel_counters()
        self.fproc.send_signal(signal.SIGTERM)
        try:
            self.ferryd_exit = self.fproc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.fail('ferryd did not exit within 30 s of SIGTERM')
            self.fproc.kill()
            self.ferryd_exit = self.fproc.wait()
        self.elapsed = time.monotonic() - t0
        return st

    # ---- accounting ------------------------------------------------------------------------
    def account(self):
        d = lambda key: self.st1['counters'][key] - self.st0['counters'][key]
        x = lambda key: self.st1['xdp'][key] - self.st0['xdp'][key]
        kd = lambda key: self.k1.get(key, 0) - self.k0.get(key, 0)
        r = {}
        gens = []
        for q, svc, port, size in FLOWS:
            with open(f'{self.t}/gen-{svc}.out') as f:
                lines = [l for l in f.read().splitlines() if l.startswith('{')]
            if not lines:
                raise Failed(f'generator {svc} printed no summary')
            gens.append(json.loads(lines[-1]))
        for g, p in zip(gens, self.gens):
            if p.returncode:
                self.fail(f'a generator exited {p.returncode}')
        sent = sum(g['sent'] for g in gens)
        r['generators'] = {'sent': sent, 'driver_drops': sum(g['driver_drops'] for g in gens),
                           'pps': round(sum(g['pps'] for g in gens)), 'per_flow': [g['sent'] for g in gens]}

        # Sessions, from ferryd's log: every attach, every end with its totals.
        logtext = self.ferryd_log()
        attached = {int(m.group(1)): int(m.group(2)) for m in
                    re.finditer(r'session ([0-9]+): pid ([0-9]+) .*?attached to service (\S+),', logtext)}
        ended = {}
        for m in re.finditer(r'session ([0-9]+) \(service (\S+), pid ([0-9]+)\) ended: (.*?); received ([0-9]+) '
                             r'\(dropped ([0-9]+), ring full, ([0-9]+) too big\)', logtext):
            ended[int(m.group(1))] = {'svc': m.group(2), 'why': m.group(4), 'received': int(m.group(5)),
                                      'full': int(m.group(6)), 'big': int(m.group(7))}
        # Each pid's sessions in the order they attached (ids grow): over a long soak pids come
        # back, each once the process that had it is gone, so the clients of one pid, in the
        # order they started, had these sessions in this order.
        by_pid = {}
        for sid in sorted(attached):
            by_pid.setdefault(attached[sid], []).append(sid)
        npid = {}
        for c in self.clients:
            with open(c['out'], errors='replace') as f:
                c['attached'] = 'attached to service' in f.read()
            if c['attached']:
                npid[c['proc'].pid] = npid.get(c['proc'].pid, 0) + 1
        for pid, n in npid.items():
            if len(by_pid.get(pid, [])) != n:
                self.fail(f'pid {pid}: {n} clients attached, ferryd logged sessions {by_pid.get(pid, [])}')
        if set(attached) != set(ended):
            self.fail(f'sessions attached {len(attached)}, ended {len(ended)}: '
                      f'never ended {sorted(set(attached) - set(ended))[:10]}')
        # Clients, by how they ended; a client that ended cleanly printed its count and session.
        cl = {'started': len(self.clients), 'attached': 0, 'never_attached': 0, 'zero_copy': 0, 'SIGKILL': 0,
              'SIGTERM': 0, 'ended_by_reload': 0, 'read': 0, 'left_in_ring': 0, 'in_killed': 0}
        for c in self.clients:
            with open(c['out'], errors='replace') as f:
                out = f.read()
            sid = by_pid[c['proc'].pid].pop(0) if c['attached'] and by_pid.get(c['proc'].pid) else None
            m = re.search(r'ferry-echo datagrams=([0-9]+) .*session=([0-9]+)', out)
            if not c['attached']:
                cl['never_attached'] += 1  # refused (its service just removed), or killed before attaching
                continue
            cl['attached'] += 1
            cl['zero_copy'] += c['zc']
            if c['end'] == 'SIGKILL':
                cl['SIGKILL'] += 1
                continue
            if c['end'] == 'itself':
                cl['ended_by_reload'] += 1
                if 'was removed by a reload' not in out:
                    self.fail(f'client {c["n"]} ({c["svc"]}) ended by itself: {out.strip()[-200:]}')
            else:
                cl['SIGTERM'] += 1
                if c['proc'].returncode:
                    self.fail(f'client {c["n"]} exited {c["proc"].returncode} after SIGTERM: {out.strip()[-200:]}')
            # Its session, by its pid (a session ferryd ended is no longer the client's to report).
            if not m or sid not in ended or (int(m.group(2)) and int(m.group(2)) != sid):
                self.fail(f'client {c["n"]} ({c["svc"]}, pid {c["proc"].pid}, session {sid}) ended cleanly '
                          f'without a count of that session: {out.strip()[-200:]}')
                continue
            s = ended[sid]
            s['read'] = int(m.group(1))
            if s['read'] > s['received']:
                self.fail(f'client {c["n"]} read {s["read"]}, more than its session {sid} received '
                          f'({s["received"]})')
        for s in ended.values():
            if 'read' in s:
                cl['read'] += s['read']
                cl['left_in_ring'] += s['received'] - s['read']
            else:
                cl['in_killed'] += s['received']
        cl['sessions'] = len(ended)
        r['clients'] = cl
        delivered = sum(s['received'] for s in ended.values())

        # Hop by hop: each count of one hop is the next hop's count plus its named drops.
        hops = []

        def hop(name, into, parts):
            have = sum(parts.values())
            hops.append({'hop': name, 'in': into, 'out': parts, 'unexplained': into - have})
            if into != have:
                self.fail(f'{name}: {into} in, {have} out ({parts})')

        veth_pre_xdp = kd('peer_tx_dropped') + kd('host_rx_dropped') - kd('veth_drops')
        hop('veth: generators -> XDP program', sent,
            {'xdp_ran': kd('veth_xdp_packets'), 'veth_dropped': veth_pre_xdp})
        pass_all = sum(x(k) for k in self.st1['xdp'] if k.startswith('pass_'))
        hop('XDP program verdicts', kd('veth_xdp_packets'),
            {'redirected': x('redirected'), 'passed': pass_all, 'xdp_drop': kd('veth_xdp_drops')})
        # rx_no_service counts on both of ferryd's paths: the AF_XDP share is what the queues took
        # that was neither handed on nor bad; the rest is the sockets' (a removed service's).
        xsk_frames = x('redirected') - d('xsk_rx_dropped') - d('xsk_rx_ring_full')
        q_rx = sum(q['rx_packets'] for w in self.st1['workers'] for q in w.get('queues', [])) - \
            sum(q['rx_packets'] for w in self.st0['workers'] for q in w.get('queues', []))
        ns_xsk = xsk_frames - q_rx - d('rx_bad_header')
        ns_sock = d('rx_no_service') - ns_xsk
        hop('AF_XDP: redirected -> ferryd', x('redirected'),
            {'handed_on': q_rx, 'rx_bad_header': d('rx_bad_header'), 'rx_no_service': ns_xsk,
             'xsk_rx_dropped': d('xsk_rx_dropped'), 'xsk_rx_ring_full': d('xsk_rx_ring_full')})
        if kd('veth_drops') != d('xsk_rx_dropped') + d('xsk_rx_ring_full'):
            self.fail(f'veth counted {kd("veth_drops")} failed redirects, the AF_XDP sockets '
                      f'{d("xsk_rx_dropped") + d("xsk_rx_ring_full")}')
        if ns_xsk < 0 or ns_sock < 0:
            self.fail(f'rx_no_service {d("rx_no_service")} split as AF_XDP {ns_xsk}, sockets {ns_sock}')
        ip_drops = sum(kd('ip_' + k) for k in ('InHdrErrors', 'InAddrErrors', 'InUnknownProtos', 'InDiscards'))
        hop('kernel: passed -> sockets', pass_all,
            {'read_by_ferryd': kd('udp_InDatagrams'), 'udp_no_ports': kd('udp_NoPorts'),
             'udp_in_errors': kd('udp_InErrors'), 'ip_dropped': ip_drops})
        hop('ferryd sockets -> handlers', kd('udp_InDatagrams'),
            {'handed_on': d('rx_via_socket'), 'rx_truncated': d('rx_truncated'), 'rx_no_service': ns_sock})
        if q_rx + d('rx_via_socket') != d('rx_packets'):
            self.fail(f'queues took {q_rx} and sockets {d("rx_via_socket")}, rx_packets {d("rx_packets")}')
        hop('ferryd -> client rings', d('rx_packets'),
            {'delivered': delivered, 'rx_no_client': d('rx_no_client'), 'rx_client_full': d('rx_client_full'),
             'rx_client_big': d('rx_client_big')})
        if sum(s['full'] for s in ended.values()) != d('rx_client_full'):
            self.fail(f'the sessions dropped {sum(s["full"] for s in ended.values())} for a full ring, '
                      f'ferryd counted {d("rx_client_full")}')
        hop('client rings -> clients', delivered,
            {'read': cl['read'], 'left_in_ring_at_close': cl['left_in_ring'],
             'in_rings_of_killed_clients': cl['in_killed']})
        r['hops'] = hops

        drops = {
            'generator_driver_drops (not sent)': r['generators']['driver_drops'],
            'veth_dropped': veth_pre_xdp,
            'xdp_drop': kd('veth_xdp_drops'),
            'xsk_rx_dropped': d('xsk_rx_dropped'),
            'xsk_rx_ring_full': d('xsk_rx_ring_full'),
            'rx_no_service': d('rx_no_service'),
            'rx_bad_header': d('rx_bad_header'),
            'rx_truncated': d('rx_truncated'),
            'kernel udp_no_ports': kd('udp_NoPorts'),
            'kernel udp_in_errors': kd('udp_InErrors'),
            'kernel ip_dropped': ip_drops,
            'rx_no_client': d('rx_no_client'),
            'rx_client_full': d('rx_client_full'),
            'rx_client_big': d('rx_client_big'),
        }
        named = sum(v for k, v in drops.items() if not k.startswith('generator'))
        unexplained = sent - delivered - named
        r['end_to_end'] = {'sent': sent, 'delivered': delivered, 'named_drops': named, 'unexplained': unexplained,
                           'drops': drops, 'xdp_pass': {k: x(k) for k in self.st1['xdp'] if x(k)}}
        if unexplained:
            self.fail(f'end to end: sent {sent}, delivered {delivered} + named drops {named}: '
                      f'{unexplained} unexplained')
        if sent == 0 or delivered == 0:
            self.fail(f'no traffic: sent {sent}, delivered {delivered}')

        # ferryd itself
        c1 = self.st1['counters']
        r['frames'] = {k: c1[k] for k in ('frames_total', 'frames_free', 'frames_kernel', 'frames_user', 'frames_tx')}
        r['frames']['checks'] = self.samples
        r['ferryd'] = {'pid': self.fpid, 'exit': self.ferryd_exit, 'mode': 'xdp', 'xdp_mode': self.xdp_mode,
                       'af_xdp': self.af_xdp_line, 'uptime_s': round(self.st1['uptime_ms'] / 1000),
                       'errors': len(re.findall(r'^ferryd: error:', logtext, re.M)),
                       'warnings': len(re.findall(r'^ferryd: warning:', logtext, re.M))}
        if self.ferryd_exit:
            self.fail(f'ferryd exited {self.ferryd_exit} after SIGTERM (78 config, 3 frames unbalanced: see its log)')
        if 'frame accounting unbalanced' in logtext:
            self.fail('ferryd: frame accounting unbalanced after drain')
        for line in re.findall(r'^ferryd: error: .*', logtext, re.M)[:5]:
            self.fail(f'ferryd logged {line}')
        rss = [s[1] for s in self.rss]
        r['rss_kb'] = {'baseline': self.rss_base, 'end': self.rss_end, 'growth': self.rss_end - self.rss_base,
                       'max': max(rss), 'min': min(rss), 'samples': len(rss), 'limit_growth': RSS_LIMIT_KB,
                       'end_detail': dict(zip(('VmRSS', 'RssAnon', 'RssFile', 'RssShmem'), self.rss[-1][1:]))}
        if self.rss_end - self.rss_base >= RSS_LIMIT_KB:
            self.fail(f'ferryd VmRSS grew {self.rss_end - self.rss_base} kB ({self.rss_base} -> {self.rss_end}), '
                      f'limit {RSS_LIMIT_KB} kB')
        r['reloads'] = self.reloads
        step = max(1, len(self.timeline) // 60)
        r['timeline'] = {'fields': ['t_s', 'VmRSS_kB', 'clients', 'rx_packets', 'rx_client_full', 'frames_user'],
                         'every_s': 5 * step, 'rows': self.timeline[::step]}
        r['kernel'] = {k: self.k1[k] - self.k0.get(k, 0) for k in sorted(self.k1) if self.k1[k] != self.k0.get(k, 0)}
        return r

    def report(self, r):
        g, cl, e, rs = r['generators'], r['clients'], r['end_to_end'], r['rss_kb']
        p = lambda s: print(s, flush=True)
        p(f'soak: {self.elapsed:.0f} s, ferryd {r["ferryd"]["af_xdp"]}')
        p(f'  sent {g["sent"]} datagrams ({g["pps"]} pps offered by 3 xdpgen), delivered to clients {e["delivered"]}, '
          f'named drops {e["named_drops"]}, unexplained {e["unexplained"]}')
        for k, v in e['drops'].items():
            if v:
                p(f'    {k:36} {v}')
        for h in r['hops']:
            p(f'  {h["hop"]:40} in {h["in"]}: ' + ', '.join(f'{k} {v}' for k, v in h['out'].items() if v)
              + f'; unexplained {h["unexplained"]}')
        p(f'  clients: {cl["started"]} started, {cl["attached"]} attached ({cl["zero_copy"]} zero-copy), '
          f'{cl["never_attached"]} never attached, {cl["SIGKILL"]} SIGKILLed, {cl["SIGTERM"]} SIGTERMed, '
          f'{cl["ended_by_reload"]} ended by a reload; {cl["sessions"]} sessions')
        p(f'  reloads: {r["reloads"]["ok"]} done, {r["reloads"]["failed"]} failed')
        p(f'  VmRSS kB: baseline {rs["baseline"]} (after warm-up, no client), end {rs["end"]}, growth {rs["growth"]} '
          f'(limit < {RSS_LIMIT_KB}), max {rs["max"]}, min {rs["min"]}, {rs["samples"]} samples')
        p(f'  frames at the end: {r["frames"]}; ferryd exit {r["ferryd"]["exit"]}, '
          f'{r["ferryd"]["errors"]} errors, {r["ferryd"]["warnings"]} warnings logged')


def main():
    ap = argparse.ArgumentParser(description='ferryd soak (tests/soak/README.md)')
    ap.add_argument('--duration', type=float, default=120, help='seconds of traffic (default 120)')
    ap.add_argument('--reload-every', type=float, default=3, help='seconds between reloads (default 3)')
    ap.add_argument('--out', help='write the JSON result there too')
    ap.add_argument('--keep-logs', help='copy every log there')
    ap.add_argument('--seed', type=int, default=None, help='random seed of the churn')
    a = ap.parse_args()
    if a.duration < 20:
        ap.error('--duration: at least 20 seconds (a warm-up of 10 comes first)')
    if a.seed is None:
        a.seed = random.randrange(1 << 30)
    if os.geteuid():
        log('needs root (namespaces, XDP)')
        return 1
    s = None

    def on_signal(sig, frame):
        log(f'{signal.Signals(sig).name}: cleaning up')
        raise SystemExit(128 + sig)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    res = {'prog': PROG, 'duration_s': a.duration, 'seed': a.seed}
    try:
        s = Soak(a)
        s.sweep()
        s.setup()
        s.soak()
        res.update(s.account())
        s.report(res)
    except Failed as e:
        if s:
            s.fail(str(e))
        else:
            log(f'FAILED: {e}')
            return 1
    finally:
        if s:
            s.cleanup()
    res['failures'] = s.fails
    res['ok'] = not s.fails
    line = json.dumps(res, separators=(',', ':'))
    print(line, flush=True)
    if a.out:
        with open(a.out, 'w') as f:
            f.write(line + '\n')
    print(f'soak: {"PASSED" if not s.fails else "FAILED: " + str(len(s.fails)) + " checks"} (seed {a.seed})',
          flush=True)
    return 0 if not s.fails else 1


if __name__ == '__main__':
    sys.exit(main())
