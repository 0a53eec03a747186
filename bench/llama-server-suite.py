#!/usr/bin/python3
"""Runs llama.cpp's own server tests (tools/server/tests) against wf_server or native llama-server.

A benchmark-like check, not part of `npm test`. Nothing of llama.cpp is committed here: the tests are
unpacked at run time from a llama.cpp source tree (or from node-llama-cpp's llama/gitRelease.bundle)
into a temporary folder, and a small pytest plugin written there patches how they start a server:

- every preset that downloads the stories260K test models (tinyllama2, tinyllama_infill,
  stories15m_moe) gets the local weights instead (default: the demo model; for llama-server a copy
  with its arch renamed to mainline's `bitnet` and its chat template removed, made by
  dist/bench/llama-server-model.js in the temporary folder);
- presets for models of another kind (BERT embeddings, a reranker, a vision model) and router mode
  skip their tests, saying why;
- `--target wf` starts wf_server through a wrapper that maps llama-server's flags (FLAG_MAP below).
Tests that import Python's `openai` (Debian has no package for it) skip: a stub module raises
pytest's skip when a test builds a client.

    npm run build && /usr/bin/python3 bench/llama-server-suite.py --target wf
    /usr/bin/python3 bench/llama-server-suite.py --target llama-server --llama-server /path/to/llama-server

Needs Debian's python3-pytest, python3-requests and python3-filelock (apt-get install). It prints a
table of per-file totals and every failure with a one-line reason, and writes JSON
(bench/results/llama-server-suite-TARGET.json). EXPECTED_FAILURES names the failures that are the
demo model's doing (the tests assert texts and token counts of llama.cpp's test model) or deliberate
differences, each with the reason; they are reported apart from the rest.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# llama-server flags and what wf_server does with them. A flag not listed is passed through as it is
# (wf_server refuses what it does not know, and the test then fails saying so).
#   None: dropped (no meaning for wf_server: GPU layers, flash attention, jinja is always on...)
#   'name': renamed; the flag's value, if any, follows it
FLAG_MAP = {
    '--no-jinja': None,            # wf_server always renders the model's Jinja template
    '--jinja': None,
    '--cont-batching': None,       # always on
    '--offline': None,             # wf_server never downloads
    '--swa-full': None,            # no sliding-window models
}
FLAGS_WITH_VALUE_DROPPED = {'--n-gpu-layers', '--ubatch-size', '-fa', '--cache-ram', '-ctk', '-ctv'}

# Failures that are not wf_server's to fix, by test id prefix -> why. "model:" ones assert a text, a
# token count or a behaviour of llama.cpp's test model (stories260K), which the demo model does not
# reproduce (llama-server on the demo's weights fails them too); "deliberate:" ones are differences
# the README names; "not here:" ones need a llama-server feature wf_server does not have.
MODEL = 'model: asserts the test model\'s text or token counts'
EXPECTED_FAILURES = {
    # model-dependent
    'unit/test_chat_completion.py::test_chat_completion[': MODEL,
    'unit/test_chat_completion.py::test_chat_completion_stream[': MODEL,
    'unit/test_chat_completion.py::test_chat_completion_cached_tokens': MODEL,
    'unit/test_chat_completion.py::test_return_progress[64-4-False]': MODEL + ' (the prompt\'s length: with the demo vocabulary and template it is read in 1 batch of 64, so 2 progress events; llama-server on the demo weights, with its own template, sends 3)',
    'unit/test_completion.py::test_completion[': MODEL,
    'unit/test_completion.py::test_completion_stream[': MODEL,
    'unit/test_completion.py::test_completion_parallel_slots[': MODEL + ' (the demo model ends these prompts at once: content is empty)',
    'unit/test_completion.py::test_completion_prompt_cache': MODEL,
    'unit/test_completion.py::test_completion_unified[': MODEL + ' (the demo model stops before n_predict)',
    'unit/test_completion.py::test_completion_response_fields[': MODEL + ' (the prompt text starts with the test model\'s BOS "<s> ")',
    'unit/test_ctx_shift.py::test_ctx_shift_disabled_short_prompt[': MODEL + ' (the demo model stops before the context is full)',
    'unit/test_ctx_shift.py::test_ctx_shift_disabled_stream': MODEL,
    'unit/test_ctx_shift.py::test_ctx_shift_enabled': MODEL + ' (the test model\'s 226 prompt tokens; the demo\'s tokenizer makes 155, as on llama-server)',
    'unit/test_chat_completion.py::test_chat_template': MODEL + ' (the prompt text starts with the test model\'s BOS "<s> ")',
    'unit/test_tokenize.py::test_tokenize_with_bos': MODEL + ' (BOS id 1)',
    'unit/test_ctx_shift.py::test_ctx_shift_disabled_long_prompt': MODEL + ' (the demo model\'s tokenizer makes the long text fewer tokens than a slot holds, so it fits; llama-server fails it too)',
    'unit/test_slot_save.py::test_slot_save_restore': MODEL + ' (the test model\'s reply and its 21 prompt tokens; llama-server fails it too)',
    'unit/test_slot_save.py::test_slot_erase': MODEL + ' (the test model\'s reply and its 21 prompt tokens; llama-server fails it too)',
    'unit/test_slot_save.py::test_slot_restore_legacy_token_list': MODEL + ' (84 tokens) and deliberate: it rewrites llama.cpp\'s own state-file layout; wf_server\'s slot files are its own format',
    'unit/test_proxy.py::test_mcp_proxy': 'network: proxies to http://example.com, which this machine cannot reach (the proxy answers 502 naming it)',
    'unit/test_infill.py::test_infill_with': 'model: the demo model has no fill-in-the-middle tokens (501, saying so)',
    # deliberate
    'unit/test_security.py::test_cors_options[web.mydomain.fr-Access-Control-Allow-Headers': 'deliberate: the headers asked for (browsers do not let * cover Authorization)',
    'unit/test_security.py::test_access_static_assets_without_api_key': 'deliberate: wf_server\'s chat page is one page, not llama-server\'s web UI files',
    'unit/test_compat_anthropic.py::test_anthropic_tool_result_with_image': 'deliberate: an image to a text model is the request\'s fault, a 400 (llama-server: 500, which clients and proxies take for a server fault to retry)',
    'unit/test_compat_anthropic.py::test_anthropic_vision_format_accepted': 'deliberate: an image to a text model is the request\'s fault, a 400 (llama-server: 500, which clients and proxies take for a server fault to retry)',
    'unit/test_compat_oai_responses.py::test_responses_stream_with_llama_telemetry': 'deliberate: a reply cut by max_output_tokens ends with response.incomplete (status incomplete), as OpenAI\'s Responses API; llama-server sends response.completed (progress and timings events pass)',
    'unit/test_compat_anthropic.py::test_anthropic_empty_messages': 'deliberate: an empty messages list is a 400, as Anthropic\'s API answers',
    # llama-server features wf_server does not have
    'unit/test_mcp_servers.py::': 'router mode (a models folder; skipped as every router test): these two read the global `server` in a `finally` before the router preset has set it, so the skip surfaces as a NameError, on llama-server too',
}

PLUGIN = r'''
import os, pytest, utils

MODEL = os.environ["WF_SUITE_MODEL"]
SERVER = os.environ["WF_SUITE_SERVER"]
RESULTS = os.environ["WF_SUITE_RESULTS"]
LOCAL = {"tinyllama2", "tinyllama_infill", "stories15m_moe"}
OTHER = {
    "bert_bge_small": "needs the BERT embedding model bert-bge-small (a download)",
    "bert_bge_small_with_fa": "needs the BERT embedding model bert-bge-small (a download)",
    "jina_reranker_tiny": "needs the reranker model jina-reranker-v1-tiny-en (a download)",
    "tinygemma3": "needs the vision model tinygemma3 (a download)",
    "router": "router mode (several models from a models folder)",
}

def _local(orig):
    def make():
        s = orig()
        s.model_hf_repo = None
        s.model_hf_file = None
        s.model_file = MODEL
        s.server_path = SERVER
        s.offline = False
        return s
    return staticmethod(make)

def _other(reason):
    def make():
        pytest.skip(reason, allow_module_level=True)
    return staticmethod(make)

for _name, _fn in list(vars(utils.ServerPreset).items()):
    if _name == "load_all" or not isinstance(_fn, staticmethod):
        continue
    if _name in LOCAL:
        setattr(utils.ServerPreset, _name, _local(_fn.__func__))
    else:
        setattr(utils.ServerPreset, _name, _other(OTHER.get(_name, "needs a model other than the test model (a download)")))
utils.ServerPreset.load_all = staticmethod(lambda: None)

# a test that asks for other weights (a Hugging Face repo, a URL, a draft model, LoRA adapters, a
# vision projector) needs a download: it is skipped, naming what it wanted
_start = utils.ServerProcess.start
def _checked_start(self, *a, **k):
    wants = [f"{n}={getattr(self, n)}" for n in ("model_hf_repo", "model_hf_file", "model_url", "model_draft", "lora_files", "mmproj_url", "models_dir", "models_preset")
             if getattr(self, n, None)]
    if wants:
        pytest.skip("needs a download or other models: " + ", ".join(wants))
    return _start(self, *a, **k)
utils.ServerProcess.start = _checked_start
# a request that hangs fails its test in a minute, not in utils' ten
utils.ServerProcess.make_request.__defaults__ = (None, None, 60)

_results = []

def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        reason = ""
        if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2])
        elif report.outcome == "failed":
            crash = getattr(report.longrepr, "reprcrash", None)
            reason = crash.message if crash is not None else str(report.longrepr)
        _results.append({"id": report.nodeid, "when": report.when, "outcome": report.outcome, "reason": reason})

def pytest_collectreport(report):
    if report.outcome != "passed":
        reason = str(report.longrepr)
        if isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2])
        _results.append({"id": report.nodeid, "when": "collect", "outcome": report.outcome, "reason": reason})

def pytest_sessionfinish(session):
    with open(RESULTS, "w") as f:
        json.dump(_results, f)

import json
'''

OPENAI_STUB = '''
import pytest
class OpenAI:
    def __init__(self, *a, **k):
        pytest.skip("needs Python's openai package (Debian has none)")
class AsyncOpenAI(OpenAI):
    pass
class APIError(Exception):
    pass
class BadRequestError(APIError):
    pass
class NotFoundError(APIError):
    pass
'''

WGET_STUB = '''
import pytest
def download(url, out=None):
    pytest.skip("needs a download: " + url)
'''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def unpack_tests(args, tmp):
    """Copies tools/server/tests and models/templates (the tests read ../../../models/templates) from a
    llama.cpp source tree, or unpacks them from a git bundle, keeping their relative layout."""
    parts = ('tools/server/tests', 'models/templates')
    src = args.llama_src
    if src and os.path.isdir(os.path.join(src, parts[0])):
        for part in parts:
            shutil.copytree(os.path.join(src, part), os.path.join(tmp, part))
        return os.path.join(tmp, parts[0])
    bundle = args.bundle
    if not bundle or not os.path.exists(bundle):
        sys.exit('no llama.cpp tests: give --llama-src DIR (a llama.cpp source tree) or --bundle FILE (node-llama-cpp\'s llama/gitRelease.bundle)')
    repo = os.path.join(tmp, 'repo')
    subprocess.run(['git', 'clone', '-q', '--no-checkout', bundle, repo], check=True)
    out = subprocess.run(['git', '-C', repo, 'archive', 'HEAD', *parts], check=True, capture_output=True).stdout
    subprocess.run(['tar', '-x', '-C', tmp], input=out, check=True)
    shutil.rmtree(repo, ignore_errors=True)
    return os.path.join(tmp, parts[0])


def write_wf_wrapper(tmp):
    """An executable that takes llama-server's command line and starts wf_server with it mapped."""
    path = os.path.join(tmp, 'wf-llama-server')
    entry = os.path.join(ROOT, 'bin/wf_server.js')
    with open(path, 'w') as f:
        f.write('#!' + sys.executable + '\n')
        f.write('import os, sys\n')
        f.write('FLAG_MAP = %r\nDROP_WITH_VALUE = %r\n' % (FLAG_MAP, sorted(FLAGS_WITH_VALUE_DROPPED)))
        f.write('''
args = sys.argv[1:]
# llama-server serves /metrics only with --metrics; wf_server by default
out = [] if "--metrics" in args else ["--no-metrics"]
# llama-server gives each slot ctx / np tokens unless --kv-unified; wf_server's default is the
# other way round (one pool a sequence may fill), so its --kv-split stands for llama-server's default
if "--kv-unified" not in args and "-kvu" not in args:
    out.append("--kv-split")
i = 0
while i < len(args):
    a = args[i]
    if a in DROP_WITH_VALUE:
        i += 2
        continue
    if a in FLAG_MAP:
        if FLAG_MAP[a] is not None:
            out.append(FLAG_MAP[a])
        i += 1
        continue
    out.append(a)
    i += 1
node = os.environ.get("WF_SUITE_NODE", "node")
os.execvp(node, [node, %r, "--quiet", *out])
''' % entry)
    os.chmod(path, 0o755)
    return path


def llama_model(tmp, model):
    out = os.path.join(tmp, 'model-bitnet.gguf')
    subprocess.run(['node', os.path.join(ROOT, 'dist/bench/llama-server-model.js'), model, out], check=True)
    return out


def expected_reason(test_id):
    for prefix, why in EXPECTED_FAILURES.items():
        if test_id.startswith(prefix):
            return why
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--target', choices=['wf', 'llama-server'], default='wf')
    p.add_argument('--llama-server', default=os.environ.get('LLAMA_SERVER_BIN_PATH', '/work/llama.cpp-src/build/bin/llama-server'))
    p.add_argument('--llama-src', default=os.environ.get('LLAMA_CPP_SRC', '/work/llama.cpp-src'), help='llama.cpp source tree holding tools/server/tests')
    p.add_argument('--bundle', default=os.path.join(ROOT, 'node_modules/node-llama-cpp/llama/gitRelease.bundle'), help='or: a git bundle of it')
    p.add_argument('--model', default=os.path.join(ROOT, 'models/wrinklefree-demo.gguf'))
    p.add_argument('--files', default='', help='comma-separated test files (test_completion,test_template); default: all')
    p.add_argument('-k', default='', help="pytest -k expression")
    p.add_argument('--file-timeout', type=int, default=900, help='seconds one test file may take')
    p.add_argument('--out', default='')
    p.add_argument('--keep', action='store_true', help='keep the temporary folder (it is printed)')
    a = p.parse_args()

    tmp = tempfile.mkdtemp(prefix='wf-llama-suite-')
    tests = unpack_tests(a, tmp)
    for name, text in (('wf_suite_plugin.py', PLUGIN), ('openai.py', OPENAI_STUB), ('wget.py', WGET_STUB)):
        try:
            __import__(name[:-3])
            if name != 'wf_suite_plugin.py':
                continue  # the real module is there
        except ImportError:
            pass
        with open(os.path.join(tests, name), 'w') as f:
            f.write(text)
    if a.target == 'wf':
        if not os.path.exists(os.path.join(ROOT, 'dist/src/cli/wf_server.js')):
            sys.exit('dist/ is missing: run npm run build first')
        server, model = write_wf_wrapper(tmp), a.model
    else:
        if not os.access(a.llama_server, os.X_OK):
            sys.exit(f'no llama-server at {a.llama_server} (give --llama-server PATH)')
        server, model = a.llama_server, llama_model(tmp, a.model)

    files = sorted(f[:-3] for f in os.listdir(os.path.join(tests, 'unit')) if f.startswith('test_') and f.endswith('.py'))
    if a.files:
        want = [f if f.startswith('test_') else 'test_' + f for f in a.files.split(',')]
        files = [f for f in files if f in want]
    print(f'target {a.target}: {server}\nmodel {model}\ntests {tests} ({len(files)} files)', flush=True)

    everything = []
    table = []
    for name in files:
        results_path = os.path.join(tmp, name + '.json')
        env = {**os.environ, 'WF_SUITE_MODEL': model, 'WF_SUITE_SERVER': server, 'WF_SUITE_RESULTS': results_path,
               'PORT': str(free_port()), 'LLAMA_CACHE': os.path.join(tmp, 'cache')}
        cmd = [sys.executable, '-m', 'pytest', '-p', 'wf_suite_plugin', '-q', '-m', 'not slow', '-p', 'no:cacheprovider',
               f'unit/{name}.py']
        if a.k:
            cmd += ['-k', a.k]
        t0 = time.time()
        try:
            r = subprocess.run(cmd, cwd=tests, env=env, capture_output=True, text=True, timeout=a.file_timeout)
            log = r.stdout + r.stderr
        except subprocess.TimeoutExpired as e:
            log = f'TIMEOUT after {a.file_timeout} s\n' + (e.stdout or b'').decode(errors='replace') if isinstance(e.stdout, bytes) else f'TIMEOUT after {a.file_timeout} s'
        with open(os.path.join(tmp, name + '.log'), 'w') as f:
            f.write(log)
        res = []
        if os.path.exists(results_path):
            with open(results_path) as f:
                res = json.load(f)
        else:
            res = [{'id': f'unit/{name}.py', 'when': 'run', 'outcome': 'failed', 'reason': (log.strip().splitlines() or ['no output'])[-1]}]
        for x in res:
            x['file'] = name
            if x['outcome'] == 'failed':
                x['expected'] = expected_reason(x['id'])
        everything += res
        count = lambda o: sum(1 for x in res if x['outcome'] == o)
        fails = count('failed')
        row = {'file': name, 'passed': count('passed'), 'failed': fails, 'skipped': count('skipped'),
               'expected': sum(1 for x in res if x['outcome'] == 'failed' and x.get('expected')), 'seconds': round(time.time() - t0, 1)}
        table.append(row)
        print(f"{name:32s} {row['passed']:4d} passed {row['failed']:4d} failed {row['skipped']:4d} skipped  ({row['seconds']} s)", flush=True)

    tot = {k: sum(r[k] for r in table) for k in ('passed', 'failed', 'skipped', 'expected')}
    print(f"{'TOTAL':32s} {tot['passed']:4d} passed {tot['failed']:4d} failed {tot['skipped']:4d} skipped"
          f"  ({tot['expected']} of the failures expected: model-dependent or deliberate)")
    print('\nfailures:')
    for x in everything:
        if x['outcome'] == 'failed':
            why = ' '.join(str(x['reason']).split())[:220]
            mark = f"  [expected: {x['expected']}]" if x.get('expected') else ''
            print(f"  {x['id']}: {why}{mark}")
    out = a.out or os.path.join(ROOT, f'bench/results/llama-server-suite-{a.target}.json')
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        json.dump({'target': a.target, 'server': server, 'model': model, 'totals': tot, 'files': table, 'tests': everything}, f, indent=1)
    print(f'\nwrote {out}' + (f'; logs in {tmp}' if a.keep else ''))
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
