"""Shared by the benchmarks of bench/: the machine they ran on, children measured alone (wall
time, peak RSS, CPU), the MongoDB test server."""
import json
import os
import pathlib
import platform
import signal
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLK = os.sysconf("SC_CLK_TCK")


def machine(**versions):
    """CPU model, cores, memory and Python version, plus the versions given."""
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "memory GiB": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30), **versions}


# Runs argv[2:] and prints its exit code, wall time, peak RSS and CPU (RUSAGE_CHILDREN of this
# wrapper, which has no other child) as one JSON line; argv[1]: a file for the child's stderr, or
# "" to capture it.
_WRAPPER = ("import json,resource,subprocess,sys,time;"
            "e=open(sys.argv[1],'w') if sys.argv[1] else subprocess.PIPE;"
            "t=time.perf_counter();"
            "p=subprocess.run(sys.argv[2:],stdout=subprocess.PIPE,stderr=e,text=True);"
            "w=time.perf_counter()-t;"
            "u=resource.getrusage(resource.RUSAGE_CHILDREN);"
            "print(json.dumps({'rc':p.returncode,'wall':w,'rss_mib':u.ru_maxrss/1024,"
            "'cpu':u.ru_utime+u.ru_stime,'out':p.stdout,'err':p.stderr or ''}))")


def run_isolated(cmd):
    """Runs cmd in a wrapper process of its own, so that RUSAGE_CHILDREN covers just cmd: returns
    {"wall": seconds, "rss_mib": its peak RSS, "cpu": its CPU seconds, "out": stdout, "err":
    stderr}; exits with cmd's output when it fails."""
    return Isolated(cmd).wait()


class Isolated:
    """cmd started in the background in a wrapper of its own (as run_isolated); with err_path,
    its stderr goes to that file as it is written (a log to watch while it runs). wait() returns
    run_isolated's dict ("err": the file's text when err_path is given)."""

    def __init__(self, cmd, err_path=None):
        self.cmd, self.err_path = cmd, err_path
        if err_path:  # a log left by an earlier run must not be read as this one's
            pathlib.Path(err_path).unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, str(err_path or "")] + [str(c) for c in cmd],
                                     stdout=subprocess.PIPE, text=True)

    def running(self):
        return self.proc.poll() is None

    def log(self):
        try:
            return open(self.err_path).read() if self.err_path else ""
        except FileNotFoundError:
            return ""

    def child_pid(self):
        """The pid of cmd itself (the wrapper's only child), or None."""
        try:
            return int(open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def signal(self, sig):
        pid = self.child_pid()
        if pid:
            os.kill(pid, sig)

    def wait(self, timeout=None, check=True):
        out, _ = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            raise SystemExit(f"the wrapper of {self.cmd} exited {self.proc.returncode}:\n{out[-3000:]}")
        r = json.loads(out.strip().splitlines()[-1])
        if self.err_path:
            r["err"] = self.log()
        if check and r["rc"] != 0:
            raise SystemExit(f"{self.cmd} exited {r['rc']}:\n{r['out'][-3000:]}\n{r['err'][-3000:]}")
        return r


def last_json_line(text):
    """The last line of a child's output, parsed (the children print their result last)."""
    return json.loads(text.strip().splitlines()[-1])


class Server:
    """scripts/mongo-test-server (exec's java, so the pid is the JVM's)."""

    def __init__(self, heap=None):
        env = dict(os.environ)
        if heap:  # the JVM's default maximum heap is a quarter of the machine's memory
            env["JAVA_TOOL_OPTIONS"] = (env.get("JAVA_TOOL_OPTIONS", "") + f" -Xmx{heap}").strip()
        self.proc = subprocess.Popen([str(ROOT / "scripts" / "mongo-test-server"), "--port", "0"],
                                     stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if "listening on 127.0.0.1:" not in line:
            self.stop()
            raise SystemExit(f"mongo-test-server did not start: {line!r}")
        self.uri = f"mongodb://127.0.0.1:{int(line.split('127.0.0.1:')[1].split()[0])}"

    def cpu(self):
        f = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / CLK  # utime, stime

    def rss_mib(self, field="VmRSS"):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    def gc_seconds(self):
        """Seconds the JVM has spent in garbage collection (jstat), or None without jstat."""
        try:
            lines = subprocess.run(["jstat", "-gc", str(self.proc.pid)], capture_output=True, text=True,
                                   timeout=30).stdout.split("\n")
            return float(dict(zip(lines[0].split(), lines[1].split()))["GCT"])
        except Exception:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def clear_oplog(client):
    """The test server keeps every write in its oplog (change streams are on), in memory: empty
    it between runs, so that four runs of N documents do not fill the JVM's heap."""
    client["local"]["oplog.rs"].delete_many({})
