"""What every benchmark of bench/ records about the machine it ran on."""
import json
import os
import platform
import subprocess
import sys


def machine(**versions):
    """CPU model, cores, memory and Python version, plus the versions given."""
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "memory GiB": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30), **versions}


def run_isolated(cmd):
    """Runs cmd in a wrapper process of its own, so that RUSAGE_CHILDREN covers just cmd: returns
    {"wall": seconds, "rss_mib": its peak RSS, "cpu": its CPU seconds, "out": stdout, "err":
    stderr}; exits with cmd's output when it fails."""
    wrapper = [sys.executable, "-c",
               "import json,resource,subprocess,sys,time;"
               "t=time.perf_counter();"
               "p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
               "w=time.perf_counter()-t;"
               "u=resource.getrusage(resource.RUSAGE_CHILDREN);"
               "print(json.dumps({'rc':p.returncode,'wall':w,'rss_mib':u.ru_maxrss/1024,"
               "'cpu':u.ru_utime+u.ru_stime,'out':p.stdout,'err':p.stderr}))"] + cmd
    p = subprocess.run(wrapper, capture_output=True, text=True, check=True)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    if r["rc"] != 0:
        raise SystemExit(f"{cmd} exited {r['rc']}:\n{r['out']}\n{r['err'][-3000:]}")
    return r


def last_json_line(text):
    """The last line of a child's output, parsed (the children print their result last)."""
    return json.loads(text.strip().splitlines()[-1])
