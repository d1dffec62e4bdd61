#!/usr/bin/env python3
"""A small Kubernetes API server for tests: the real wire format over real HTTPS.

Serves, with bearer-token auth:
  GET   /api/v1/pods?fieldSelector=spec.nodeName=N[&limit=&continue=&resourceVersion=&resourceVersionMatch=]
        list (PodList, resourceVersion), with the API's resourceVersion semantics for list:
          ""  (Most Recent, a quorum read): the current state;
          "0" (Any, the watch cache): the current state, or an older one while the watch cache is
              frozen (op watch_cache); limit may be ignored (rv0_ignores_limit), as a real
              server's watch cache does;
          R   with resourceVersionMatch=NotOlderThan, or with neither match nor limit (legacy):
              the current state (a real server waits for its cache to reach R; here it has);
          R   with resourceVersionMatch=Exact, or with limit and no match (the legacy rule that
              makes a bare resourceVersion exact once paging): the state at R;
          R older than the compaction point: 410 Expired, whatever the match (the API allows
          410 for any version the server no longer keeps; kube-apiserver answers it for exact
          reads, and it lets tests drive a client's fallback); R newer than the current version:
          504 "Too large resource version" as kube-apiserver answers once its wait for R timed
          out (the fake answers at once: nothing would change while it waited).
        Continue pages answer the state at their first page's version. resourceVersion together
        with continue is refused (400); resourceVersionMatch without resourceVersion, with
        continue, Exact with "0", or an unknown one is refused as the real validation does (422)
  GET   /api/v1/pods?...&watch=true&resourceVersion=R[&allowWatchBookmarks] chunked newline-delimited
        watch events (ADDED/MODIFIED/DELETED/BOOKMARK/ERROR); a too-old R gets 410 Gone
        (an ERROR event by default, like the real server, or an HTTP 410)
  GET/PATCH /api/v1/nodes/NAME and /apis/vpcresources.k8s.aws/v1alpha1/cninodes/NAME
        (application/merge-patch+json; metadata.resourceVersion in the patch must match: else 409)

Authorization: with the op rbac (a ClusterRole's rules, e.g. deploy/aws-node.yaml's) every request
is checked as kube-apiserver's RBAC authorizer does for a cluster-scoped binding: its verb (get,
list, watch, create, update, patch, delete; a collection GET is list, with watch=true watch), API
group and resource from the path, allowed when some rule names all three (or "*"). Else 403
Forbidden with the API's Status, and the request is recorded in stats "forbidden".

Started by a test: generates a CA and a server certificate for 127.0.0.1 with the openssl CLI in
--dir, listens on an ephemeral loopback port and prints {"port": P, "dir": D} on stdout. Then it
reads one JSON command per line on stdin and answers one JSON line on stdout (see `control`).
It exits when stdin closes, so it never outlives its test.
"""
import argparse, copy, json, os, socket, ssl, subprocess, sys, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CNINODES = "/apis/vpcresources.k8s.aws/v1alpha1/cninodes/"
NODES = "/api/v1/nodes/"


def make_certs(d):
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    for ca in ("ca", "other-ca"):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{d}/{ca}.key", "-out", f"{d}/{ca}.crt", "-days", "2", "-subj", f"/CN=test-{ca}")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr", "-subj", "/CN=kube-apiserver")
    with open(f"{d}/server.ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.crt", "-CAkey", f"{d}/ca.key",
        "-CAcreateserial", "-out", f"{d}/server.crt", "-days", "2", "-extfile", f"{d}/server.ext")


class State:
    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 1000
        self.pods = {}            # "ns/name" -> pod
        self.events = []          # [rv, type, obj]; BOOKMARK entries carry the rv at that time
        self.compacted = 0        # a watch or continue from an rv below this is 410 Gone
        self.objects = {}         # path -> object (nodes, cninodes)
        self.tokens = {"token-1"}
        self.frozen = False       # hold events back from open watches (a stalled stream)
        self.drop_gen = 0         # bumped to end open watches
        self.drop_mode = "close"  # close: cut the connection mid-stream; error410: ERROR event
        self.gone_mode = "event"  # how a too-old watch resourceVersion is answered: event or http
        self.concurrent = {}      # path -> merge patch another writer applies just before our next PATCH
        self.requests = []        # (method, path, query)
        self.watch_rvs = []
        self.emitted = {}         # "ns/name" -> monotonic time a MODIFIED with the annotation went out
        self.open_watches = 0
        self.hang = False         # watches ignore their timeout and send nothing: a vanished peer
        self.list_rvs = []        # the resourceVersion each list asked for (None: not given)
        self.list_matches = []    # the resourceVersionMatch each list asked for (None: not given)
        self.history = [(self.rv, {})]  # (rv, pods) after each pod change: the states to answer at an rv
        self.cache_at = None      # the rv the watch cache (resourceVersion=0) is frozen at; None: current
        self.rv0_ignores_limit = False
        self.stall_lists = False  # lists send their head and half the body, then nothing until off
        self.rbac = None          # a ClusterRole's rules; None: every authenticated request is allowed
        self.forbidden = []       # [verb, group, resource] of each request RBAC refused

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def state_at(self, rv):
        """The pods as they were at resourceVersion rv (an int)."""
        return next(pods for at, pods in reversed(self.history) if at <= rv)


S = State()


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def request_attributes(method, path, q):
    """(verb, API group, resource) of a resource request, as kube-apiserver's request info resolver
    derives them: /api/v1/... is the core group, /apis/GROUP/VERSION/... a named one; a namespaced
    path is namespaces/NS/RESOURCE[/NAME]; GET of a collection is list (watch with watch=true)."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    if not rest:
        return None
    resource, named = rest[0], len(rest) > 1
    if method == "GET":
        verb = "watch" if q.get("watch") in ("true", "1") else ("get" if named else "list")
    else:
        verb = VERBS.get(method, method.lower())
    return verb, group, resource


def rbac_allows(rules, verb, group, resource):
    def has(values, want):
        return "*" in values or want in values
    return any(has(r.get("verbs", []), verb) and has(r.get("apiGroups", []), group) and has(r.get("resources", []), resource)
               for r in rules)


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def pod_node(p):
    return (p.get("spec") or {}).get("nodeName")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorized(self):
        h = self.headers.get("Authorization", "")
        with S.cond:
            ok = h.startswith("Bearer ") and h[7:] in S.tokens
        if not ok:
            self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
            return False
        u = urllib.parse.urlsplit(self.path)
        attrs = request_attributes(self.command, u.path, {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()})
        with S.cond:
            refused = S.rbac is not None and (attrs is None or not rbac_allows(S.rbac, *attrs))
            if refused:
                S.forbidden.append(list(attrs or (self.command.lower(), "", u.path)))
        if refused:
            verb, group, resource = attrs or (self.command.lower(), "", u.path)
            self.send_json(403, status(403, "Forbidden",
                                       f'{resource} is forbidden: User "system:serviceaccount:kube-system:aws-node" cannot {verb} '
                                       f'resource "{resource}" in API group "{group}" at the cluster scope'))
            return False
        return True

    def parse(self):
        u = urllib.parse.urlsplit(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
        with S.cond:
            S.requests.append((self.command, u.path, q))
        return u.path, q

    def do_GET(self):
        path, q = self.parse()
        if not self.authorized():
            return
        if path == "/api/v1/pods":
            node = None
            sel = q.get("fieldSelector", "")
            if sel.startswith("spec.nodeName="):
                node = sel[len("spec.nodeName="):]
            if q.get("watch") in ("true", "1"):
                return self.watch(node, q)
            return self.list(node, q)
        with S.cond:
            obj = copy.deepcopy(S.objects.get(path))
        if obj is None:
            return self.send_json(404, status(404, "NotFound", f"{path} not found"))
        self.send_json(200, obj)

    def list(self, node, q):
        want = q.get("resourceVersion", "")
        match = q.get("resourceVersionMatch", "")
        invalid = []
        if match:
            if not want:
                invalid.append("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided")
            if "continue" in q:
                invalid.append("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided")
            if match not in ("Exact", "NotOlderThan"):
                invalid.append(f'resourceVersionMatch: Unsupported value: "{match}": supported values: "Exact", "NotOlderThan", ""')
            if match == "Exact" and want == "0":
                invalid.append('resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
        if invalid:
            return self.send_json(422, status(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: [' + ", ".join(invalid) + "]"))
        if "continue" in q and want:
            return self.send_json(400, status(400, "BadRequest", "specifying resource version is not allowed when using continue"))
        if want and not want.isdigit():
            return self.send_json(400, status(400, "BadRequest", f"invalid resource version: {want}"))
        limit = int(q.get("limit", "0") or 0)
        with S.cond:
            S.list_rvs.append(q.get("resourceVersion"))
            S.list_matches.append(q.get("resourceVersionMatch"))
            start = 0
            if "continue" in q:
                crv, off = q["continue"].split(":")
                if int(crv) < S.compacted:
                    return self.send_json(410, status(410, "Expired", "The provided continue parameter is too old"))
                rv, start = int(crv), int(off)
                pods = S.state_at(rv)
            elif want == "":
                rv, pods = S.rv, S.pods
            elif want == "0":
                rv = S.rv if S.cache_at is None else S.cache_at
                pods = S.state_at(rv)
                if S.rv0_ignores_limit:
                    limit = 0
            else:
                r = int(want)
                if r > S.rv:
                    return self.send_json(504, dict(status(504, "Timeout", f"Timeout: Too large resource version: {r}, current: {S.rv}"),
                        details={"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}))
                if r < S.compacted:
                    return self.send_json(410, status(410, "Expired", f"The resourceVersion for the provided list is too old: {r} (compacted at {S.compacted})"))
                exact = match == "Exact" or (not match and limit)
                rv, pods = (r, S.state_at(r)) if exact else (S.rv, S.pods)
            items = [copy.deepcopy(p) for k, p in sorted(pods.items()) if node is None or pod_node(p) == node]
            rv = str(rv)
            stall = S.stall_lists
        meta = {"resourceVersion": rv}
        if limit and start + limit < len(items):
            meta["continue"] = f"{rv}:{start + limit}"
        page = items[start:start + limit] if limit else items
        obj = {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": page}
        if stall:
            return self.stalled(obj)
        self.send_json(200, obj)

    def stalled(self, obj):
        """Head and half the body, then silence (the connection stays open) until stall_lists is off."""
        body = json.dumps(obj).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            with S.cond:
                S.cond.wait_for(lambda: not S.stall_lists, timeout=120)
            self.wfile.write(body[len(body) // 2:])
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def chunk(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, node, q):
        rv = int(q.get("resourceVersion") or 0)
        deadline = time.monotonic() + int(q.get("timeoutSeconds") or 1800)
        bookmarks = q.get("allowWatchBookmarks") == "true"
        with S.cond:
            S.watch_rvs.append(str(rv))
            gone = rv < S.compacted
            gone_mode = S.gone_mode
            if not gone:
                idx = next((i for i, e in enumerate(S.events) if int(e[0]) > rv), len(S.events))
            gen = S.drop_gen
        if gone and gone_mode == "http":
            return self.send_json(410, status(410, "Expired", f"too old resource version: {rv}"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if gone:
            self.chunk({"type": "ERROR", "object": status(410, "Expired", f"too old resource version: {rv}")})
            self.wfile.write(b"0\r\n\r\n")
            return
        with S.cond:
            S.open_watches += 1
            S.cond.notify_all()
        try:
            while True:
                with S.cond:
                    while True:
                        dropped = S.drop_gen != gen
                        pending = [] if S.frozen or S.hang else S.events[idx:]
                        left = 3600 if S.hang else deadline - time.monotonic()
                        if dropped or pending or left <= 0:
                            break
                        S.cond.wait(left)
                    mode = S.drop_mode
                    idx += len(pending)
                if dropped:
                    if mode == "error410":
                        self.chunk({"type": "ERROR", "object": status(410, "Expired", "watch expired")})
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        # Cut mid-stream: no terminating chunk, the client sees a broken body.
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                    return
                for erv, etype, obj in pending:
                    if etype == "BOOKMARK":
                        if bookmarks:
                            self.chunk({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": erv}}})
                        continue
                    if node is not None and pod_node(obj) != node:
                        continue
                    self.chunk({"type": etype, "object": obj})
                    ann = (obj["metadata"].get("annotations") or {}).get("vpc.amazonaws.com/pod-eni")
                    key = obj["metadata"]["namespace"] + "/" + obj["metadata"]["name"]
                    if etype == "MODIFIED" and ann:
                        with S.cond:
                            S.emitted.setdefault(key, time.monotonic())
                if time.monotonic() >= deadline and not S.hang:
                    self.wfile.write(b"0\r\n\r\n")
                    return
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            with S.cond:
                S.open_watches -= 1

    def do_PATCH(self):
        path, q = self.parse()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if not self.authorized():
            return
        if self.headers.get("Content-Type") != "application/merge-patch+json":
            return self.send_json(415, status(415, "UnsupportedMediaType", "want application/merge-patch+json"))
        try:
            patch = json.loads(body)
        except ValueError:
            return self.send_json(400, status(400, "BadRequest", "patch is not JSON"))
        with S.cond:
            obj = S.objects.get(path)
            if obj is None:
                return self.send_json(404, status(404, "NotFound", f"{path} not found"))
            if path in S.concurrent:
                # Another writer got there between our client's GET and PATCH.
                obj = merge_patch(obj, S.concurrent.pop(path))
                obj["metadata"]["resourceVersion"] = S.next_rv()
                S.objects[path] = obj
            want = (patch.get("metadata") or {}).get("resourceVersion")
            if want is not None and want != obj["metadata"]["resourceVersion"]:
                return self.send_json(409, status(409, "Conflict",
                    f"Operation cannot be fulfilled on {path}: the object has been modified; please apply your changes to the latest version and try again"))
            patch.get("metadata", {}).pop("resourceVersion", None)
            obj = merge_patch(obj, patch)
            obj["metadata"]["resourceVersion"] = S.next_rv()
            S.objects[path] = obj
            out = copy.deepcopy(obj)
        self.send_json(200, out)


def pod_event(etype, pod):
    """One change to a pod: a new resourceVersion, the event for watches, the new state."""
    pod["metadata"]["resourceVersion"] = S.next_rv()
    key = pod["metadata"]["namespace"] + "/" + pod["metadata"]["name"]
    if etype == "DELETED":
        S.pods.pop(key, None)
    else:
        S.pods[key] = pod
    S.events.append([pod["metadata"]["resourceVersion"], etype, copy.deepcopy(pod)])
    # Pods are replaced, never changed in place: a shallow copy keeps this state.
    S.history.append((S.rv, dict(S.pods)))


def control(cmd):
    """One test command; returns the answer object."""
    op = cmd["op"]
    with S.cond:
        try:
            if op == "put_pod":          # {"pod": {...}}: ADDED or MODIFIED
                pod = copy.deepcopy(cmd["pod"])
                key = pod["metadata"]["namespace"] + "/" + pod["metadata"]["name"]
                etype = "MODIFIED" if key in S.pods else "ADDED"
                pod_event(etype, pod)
                return {"rv": pod["metadata"]["resourceVersion"]}
            if op == "annotate":         # {"key": "ns/name", "name": k, "value": v}
                pod = copy.deepcopy(S.pods[cmd["key"]])
                pod["metadata"].setdefault("annotations", {})[cmd["name"]] = cmd["value"]
                pod_event("MODIFIED", pod)
                return {"rv": pod["metadata"]["resourceVersion"]}
            if op == "delete_pod":       # {"key": "ns/name"}
                pod = copy.deepcopy(S.pods[cmd["key"]])
                pod_event("DELETED", pod)
                return {"rv": pod["metadata"]["resourceVersion"]}
            if op == "bookmark":
                S.events.append([str(S.rv), "BOOKMARK", None])
                return {"rv": str(S.rv)}
            if op == "freeze":           # {"on": bool}
                S.frozen = cmd["on"]
                return {}
            if op == "hang":             # {"on": bool}
                S.hang = cmd["on"]
                return {}
            if op == "watch_cache":      # {"frozen": bool}: resourceVersion=0 lists answer the state of now
                # until unfrozen, a watch cache lagging behind the events watches deliver
                S.cache_at = S.rv if cmd["frozen"] else None
                return {"rv": str(S.rv)}
            if op == "compact":          # events so far are forgotten: older resourceVersions are 410
                S.compacted = S.rv
                S.events = [e for e in S.events if int(e[0]) > S.rv]
                return {"compacted": S.rv}
            if op == "drop_watches":     # {"mode": "close" | "error410"}
                S.drop_mode = cmd.get("mode", "close")
                S.drop_gen += 1
                S.frozen = False
                return {}
            if op == "stall_lists":      # {"on": bool}
                S.stall_lists = cmd["on"]
                return {}
            if op == "rv0_ignores_limit":  # {"on": bool}
                S.rv0_ignores_limit = cmd["on"]
                return {}
            if op == "gone_mode":        # {"mode": "event" | "http"}
                S.gone_mode = cmd["mode"]
                return {}
            if op == "set_tokens":       # {"tokens": [...]}: the only tokens accepted from now on
                S.tokens = set(cmd["tokens"])
                return {}
            if op == "put_object":       # {"path": p, "object": {...}}
                obj = copy.deepcopy(cmd["object"])
                obj.setdefault("metadata", {})["resourceVersion"] = S.next_rv()
                S.objects[cmd["path"]] = obj
                return {"rv": obj["metadata"]["resourceVersion"]}
            if op == "get_object":
                return {"object": S.objects.get(cmd["path"])}
            if op == "concurrent_write":  # {"path": p, "patch": {...}}: applied just before the next PATCH
                S.concurrent[cmd["path"]] = cmd["patch"]
                return {}
            if op == "rbac":             # {"rules": [...]}: a ClusterRole's rules; null: allow all
                S.rbac = cmd.get("rules")
                return {}
            if op == "stats":
                reqs = S.requests
                return {"requests": len(reqs), "forbidden": S.forbidden,
                        "lists": sum(1 for m, p, q in reqs if p == "/api/v1/pods" and q.get("watch") != "true"),
                        "watches": sum(1 for m, p, q in reqs if p == "/api/v1/pods" and q.get("watch") == "true"),
                        "patches": sum(1 for m, p, q in reqs if m == "PATCH"),
                        "watch_rvs": S.watch_rvs, "list_rvs": S.list_rvs, "list_matches": S.list_matches, "open_watches": S.open_watches, "rv": str(S.rv),
                        "last": [[m, p, q] for m, p, q in reqs[-5:]]}
            if op == "emitted":          # {"key": "ns/name"}: monotonic time of the annotated MODIFIED
                return {"t": S.emitted.get(cmd["key"])}
            if op == "now":
                return {"t": time.monotonic()}
            return {"error": f"unknown op {op}"}
        finally:
            S.cond.notify_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    make_certs(args.dir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{args.dir}/server.crt", f"{args.dir}/server.key")
    ctx.set_alpn_protocols(["http/1.1"])
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print(json.dumps({"port": httpd.server_address[1], "dir": args.dir}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            out = control(json.loads(line))
        except Exception as e:  # a test's mistake: report it, keep serving
            out = {"error": repr(e)}
        print(json.dumps(out), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
