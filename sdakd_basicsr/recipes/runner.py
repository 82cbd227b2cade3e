"""Run a list of training runs (``study.Run``: an option dict and its iterations) as fresh processes, a few at a
time, dependencies first; resumable: a finished run carries a marker (its wall-clock seconds and a fingerprint of its
options and iterations) and is skipped; a finished run whose options have changed since is refused by name, never
silently reused; an interrupted one continues from its last training state (``--auto_resume``). Shared by the study
tools."""
import hashlib
import json
import os
import subprocess
import sys
import time
from os import path as osp
from typing import Dict, List, Optional

import yaml

from . import demo
from . import study as st

DONE = '.study_done'


def fingerprint(run: st.Run) -> str:
    """What makes two runs the same run: the options and the iterations."""
    text = json.dumps({'opt': run.opt, 'iters': run.iters}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_marker(name: str) -> Optional[dict]:
    """{'wall_s', 'fingerprint'} of a finished run, None if it has not finished (markers without a fingerprint, from
    before it was kept, give fingerprint None)."""
    path = osp.join('experiments', name, DONE)
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        fields = f.read().split()
    try:
        wall = float(fields[0])
    except (IndexError, ValueError):
        wall = float('nan')
    return {'wall_s': wall, 'fingerprint': fields[1] if len(fields) > 1 else None}


def is_done(run: st.Run) -> bool:
    """True when ``run`` finished with these options; a run finished with other ones is an error (its results would
    be reported under a plan they do not belong to)."""
    marker = read_marker(run.name)
    if marker is None:
        return False
    if marker['fingerprint'] != fingerprint(run):
        raise SystemExit(f'[study] experiments/{run.name} finished with other options or iterations than this plan '
                         f'asks for ({run.iters} iterations); move that folder away (or choose other run names) '
                         f'and rerun.')
    return True


def last_iteration(log_path: str) -> int:
    """The last iteration a run's console output reports (0 if none yet)."""
    if not osp.isfile(log_path):
        return 0
    with open(log_path, encoding='utf-8', errors='replace') as f:
        lines = [line for line in f if 'iter:' in line and '[eta' in line]
    if not lines:
        return 0
    return int(lines[-1].split('iter:')[1].split(',')[0].replace(' ', '') or 0)


def command(option_file: str, iters: int) -> List[str]:
    return [sys.executable, '-u', '-m', 'sdakd_basicsr.train', '-opt', option_file, '--auto_resume', '--force_yml',
            f'train:total_iter={iters}', f'train:scheduler:milestones=[{iters * 10}]']


def run_all(runs: List[st.Run], out: str, jobs: int) -> None:
    """Run every unfinished run, ``jobs`` at a time (each with 2 // jobs threads), dependencies first."""
    os.makedirs(osp.join(out, 'options'), exist_ok=True)
    os.makedirs(osp.join(out, 'logs'), exist_ok=True)
    threads = max(1, 2 // jobs)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    done = {r.name for r in runs if is_done(r)}
    pending = [r for r in runs if r.name not in done]
    total_iters = sum(r.iters for r in pending)
    demo.say(f'study: {len(runs)} runs, {len(done)} already finished, {len(pending)} to go ({total_iters} '
             f'iterations), {jobs} at a time with {threads} thread(s) each')
    active: Dict[str, tuple] = {}
    start, last_report, finished_iters = time.time(), 0.0, 0
    while pending or active:
        for run in list(pending):
            if len(active) >= jobs:
                break
            if all(dep in done for dep in run.after):
                path = osp.join(out, 'options', f'{run.name}.yml')
                with open(path, 'w', encoding='utf-8') as f:
                    yaml.safe_dump(run.opt, f, sort_keys=False)
                log = osp.join(out, 'logs', f'{run.name}.out')
                proc = subprocess.Popen(command(path, run.iters), stdout=open(log, 'a'),
                                        stderr=subprocess.STDOUT, env=env)
                active[run.name] = (run, proc, log, time.time())
                pending.remove(run)
                demo.say(f'start {run.name} ({run.iters} iterations)')
        time.sleep(2)
        for name, (run, proc, log, started) in list(active.items()):
            if proc.poll() is None:
                continue
            del active[name]
            if proc.returncode != 0:
                raise SystemExit(f'[study] {name} failed (exit {proc.returncode}); see {log}. Rerun the same '
                                 f'command to resume.')
            with open(osp.join('experiments', name, DONE), 'w') as f:
                # the run's wall-clock seconds (start-up included) and what it was run with
                f.write(f'{time.time() - started:.1f} {fingerprint(run)}\n')
            done.add(name)
            finished_iters += run.iters
            demo.say(f'done {name}')
        if time.time() - last_report > 30:
            last_report = time.time()
            current = finished_iters + sum(min(last_iteration(log), run.iters) for run, _, log, _ in active.values())
            elapsed = time.time() - start
            eta = elapsed / current * (total_iters - current) if current else float('nan')
            running = ', '.join(f'{n} {last_iteration(log)}/{r.iters}' for n, (r, _, log, _) in active.items())
            demo.say(f'progress: {current}/{total_iters} iterations, {len(done)}/{len(runs)} runs, elapsed '
                     f'{elapsed / 60:.1f} min, ETA {eta / 60:.1f} min; running: {running}')
