#!/usr/bin/python3
"""A fake HuggingFace hub for mlc-fetch's tests (Python standard library only).

Serves model directories with the hub's real API shapes:

  GET  /api/models/ORG/NAME/revision/REV[?blobs=true]   the revision listing
  GET  /ORG/NAME/resolve/REV/PATH                        a file: small files
       directly (ETag = git blob id), LFS files by a 302 redirect to
  GET  /lfs/SHA256/PATH                                  the content (the "CDN";
       on a second port with --cdn, as the real hub redirects to another host)

Files answer Range requests (206 + Content-Range). Errors carry the hub's
X-Error-Code header (RepoNotFound, RevisionNotFound, EntryNotFound).

Usage:
  fakehub.py --state DIR --repo ORG/NAME[@REV]=DIR ... [--token T] [--cdn]
             [--tls CERT KEY] [--parent PID]

The state directory is how a test talks to the server:
  port, cdn_port   written once the server listens (bound to port 0)
  requests.log     one JSON line per request: method, path, headers, status
  faults.json      read at every request: a list of rules, each with a "path"
                   glob (matched against the URL path) and one action:
                     {"status": 500, "times": 2}       answer with an error
                     {"cut_after": N, "times": 1}      send N body bytes, then
                                                       drop the connection
                     {"corrupt": OFFSET}               flip the byte at OFFSET
                     {"hold_after": N}                 send N bytes, note it in
                                                       held.log, wait for the
                                                       file "release"
                     {"rate": BYTES_PER_SECOND}        throttle
                     {"ignore_range": true}            answer 200 to Range
                     {"serve_pointer": true}           send the LFS pointer
                     {"siblings_add": [...]}           extra listing entries
                     {"json_set": {...}}               override listing fields
                     {"redirect": "URL"}               302 to URL
                   "times" limits how often a rule applies (counted per rule;
                   counts restart when the file changes).
  max_inflight     the largest number of file bodies sent at once
"""
import argparse
import fnmatch
import hashlib
import http.server
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".pt", ".pth", ".h5", ".msgpack",
                ".onnx", ".gguf", ".ckpt", ".pkl", ".zip", ".tar", ".gz", ".npy", ".tflite")
LFS_MIN_SIZE = 10 * 1024 * 1024


class Repo:
    def __init__(self, repo_id, rev, root):
        self.repo_id, self.rev, self.root = repo_id, rev, root
        self.files = {}
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != ".git"]
            for f in filenames:
                full = os.path.join(dirpath, f)
                rel = os.path.relpath(full, root)
                self.files[rel] = self.describe(full)
        digest = hashlib.sha1(f"fakehub\0{repo_id}\0{rev}\0".encode())
        for name in sorted(self.files):
            digest.update(f"{name}\0{self.files[name]['blob']}\0".encode())
        self.commit = digest.hexdigest()

    @staticmethod
    def describe(path):
        size = os.path.getsize(path)
        lfs = path.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE
        info = {"path": path, "size": size, "lfs": lfs}
        if lfs:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            info["sha256"] = h.hexdigest()
            info["pointer"] = ("version https://git-lfs.github.com/spec/v1\n"
                               f"oid sha256:{info['sha256']}\nsize {size}\n").encode()
            info["blob"] = git_blob_id(info["pointer"])
        else:
            with open(path, "rb") as f:
                info["blob"] = git_blob_id(f.read())
        return info

    def sibling(self, name, blobs):
        info = self.files[name]
        s = {"rfilename": name}
        if blobs:
            s["blobId"] = info["blob"]
            s["size"] = info["size"]
            if info["lfs"]:
                s["lfs"] = {"sha256": info["sha256"], "size": info["size"],
                            "pointerSize": len(info["pointer"])}
        return s


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Hub:
    def __init__(self, args):
        self.state = args.state
        self.token = args.token
        self.repos = {}          # repo_id -> {rev: Repo}
        self.by_sha = {}         # sha256 -> Repo file info
        for spec in args.repo:
            ident, _, root = spec.partition("=")
            repo_id, _, rev = ident.partition("@")
            repo = Repo(repo_id, rev or "main", os.path.abspath(root))
            self.repos.setdefault(repo_id, {})[repo.rev] = repo
            for info in repo.files.values():
                if info["lfs"]:
                    self.by_sha[info["sha256"]] = info
        self.lock = threading.Lock()
        self.fault_text = None
        self.faults = []
        self.fault_uses = {}
        self.inflight = 0
        self.max_inflight = 0
        self.cdn_base = None
        self.base = None

    def find(self, repo_id, rev):
        revs = self.repos.get(repo_id)
        if revs is None:
            return None, "RepoNotFound"
        if rev in revs:
            return revs[rev], None
        for r in revs.values():
            if r.commit == rev:
                return r, None
        return None, "RevisionNotFound"

    def load_faults(self):
        path = os.path.join(self.state, "faults.json")
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            text = "[]"
        with self.lock:
            if text != self.fault_text:
                self.fault_text = text
                self.faults = json.loads(text) if text.strip() else []
                self.fault_uses = {}

    def fault(self, path, key):
        """The first rule for this path with this action, counting its use."""
        self.load_faults()
        with self.lock:
            for i, rule in enumerate(self.faults):
                if key not in rule or not fnmatch.fnmatchcase(path, rule.get("path", "*")):
                    continue
                used = self.fault_uses.get(i, 0)
                if "times" in rule and used >= rule["times"]:
                    continue
                self.fault_uses[i] = used + 1
                return rule
        return None

    def log(self, entry):
        with self.lock:
            with open(os.path.join(self.state, "requests.log"), "a") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")

    def log_hold(self, path):
        with self.lock:
            with open(os.path.join(self.state, "held.log"), "a") as f:
                f.write(path + "\n")

    def body_started(self):
        path = os.path.join(self.state, "max_inflight")
        with self.lock:
            self.inflight += 1
            if not os.path.exists(path):   # the test removed it: count afresh
                self.max_inflight = 0
            if self.inflight > self.max_inflight:
                self.max_inflight = self.inflight
                write_atomic(path, str(self.max_inflight))

    def body_ended(self):
        with self.lock:
            self.inflight -= 1


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakehub/1"
    hub = None      # set on the class per server
    is_cdn = False

    def log_message(self, fmt, *args):
        pass

    def do_HEAD(self):
        self.handle_any(head=True)

    def do_GET(self):
        self.handle_any(head=False)

    # --- answers ---

    def record(self, status):
        self.hub.log({"method": self.command, "path": self.path, "status": status,
                      "headers": {k: v for k, v in self.headers.items()},
                      "server": "cdn" if self.is_cdn else "hub"})

    def answer(self, status, body=b"", headers=None, ctype="application/json"):
        self.record(status)
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, message):
        headers = {"X-Error-Code": code} if code else {}
        if message:
            headers["X-Error-Message"] = message
        self.answer(status, json.dumps({"error": message}).encode(), headers)

    def handle_any(self, head):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        rule = self.hub.fault(path, "status")
        if rule:
            headers = rule.get("headers", {})
            return self.answer(rule["status"], rule.get("body", "").encode(), headers, "text/plain")
        rule = self.hub.fault(path, "redirect")
        if rule:
            return self.answer(302, b"", {"Location": rule["redirect"]}, "text/plain")
        if not self.is_cdn and self.hub.token is not None:
            if self.headers.get("Authorization") != "Bearer " + self.hub.token:
                return self.error(401, "", "Invalid credentials in Authorization header")
        parts = path.split("/")
        if self.is_cdn or path.startswith("/lfs/"):
            return self.serve_lfs(parts)
        if path.startswith("/api/models/"):
            return self.serve_api(path, url.query)
        if len(parts) >= 6 and parts[3] == "resolve":
            return self.serve_resolve(parts)
        return self.error(404, "", "Not found")

    def serve_api(self, path, query):
        # /api/models/ORG/NAME/revision/REV
        rest = path[len("/api/models/"):]
        segs = rest.split("/")
        if len(segs) != 4 or segs[2] != "revision":
            return self.error(404, "", "Not found")
        repo_id = urllib.parse.unquote(segs[0]) + "/" + urllib.parse.unquote(segs[1])
        rev = urllib.parse.unquote(segs[3])
        repo, err = self.hub.find(repo_id, rev)
        if err == "RepoNotFound":
            return self.error(404, err, "Repository not found")
        if err:
            return self.error(404, err, f"Invalid rev id: {rev}")
        blobs = urllib.parse.parse_qs(query).get("blobs") == ["true"]
        siblings = [repo.sibling(n, blobs) for n in sorted(repo.files)]
        rule = self.hub.fault(path, "siblings_add")
        if rule:
            siblings += rule["siblings_add"]
        org, name = repo_id.split("/")
        doc = {
            "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24], "id": repo_id,
            "modelId": repo_id, "author": org, "sha": repo.commit,
            "lastModified": "2024-05-01T12:00:00.000Z", "private": self.hub.token is not None,
            "disabled": False, "gated": False, "downloads": 0, "likes": 0,
            "library_name": "transformers", "tags": ["transformers", "safetensors"],
            "siblings": siblings, "createdAt": "2024-05-01T12:00:00.000Z",
            "usedStorage": sum(f["size"] for f in repo.files.values()),
        }
        rule = self.hub.fault(path, "json_set")
        if rule:
            doc.update(rule["json_set"])
        self.answer(200, json.dumps(doc).encode())

    def serve_resolve(self, parts):
        # /ORG/NAME/resolve/REV/PATH...
        repo_id = urllib.parse.unquote(parts[1]) + "/" + urllib.parse.unquote(parts[2])
        rev = urllib.parse.unquote(parts[4])
        name = urllib.parse.unquote("/".join(parts[5:]))
        repo, err = self.hub.find(repo_id, rev)
        if err:
            return self.error(404, err, "Repository not found" if err == "RepoNotFound"
                              else f"Invalid rev id: {rev}")
        info = repo.files.get(name)
        if info is None:
            return self.error(404, "EntryNotFound", f"{name} does not exist on \"{rev}\"")
        headers = {"X-Repo-Commit": repo.commit, "ETag": '"%s"' % info["blob"]}
        if info["lfs"]:
            headers["X-Linked-Size"] = str(info["size"])
            headers["X-Linked-Etag"] = '"%s"' % info["sha256"]
            base = self.hub.cdn_base or self.hub.base
            headers["Location"] = "%s/lfs/%s/%s?X-Amz-Signature=fake" % (
                base, info["sha256"], urllib.parse.quote(name))
            return self.answer(302, b"", headers, "text/plain")
        self.send_file(info, headers)

    def serve_lfs(self, parts):
        # /lfs/SHA256/PATH
        info = self.hub.by_sha.get(parts[2]) if len(parts) >= 3 else None
        if info is None:
            return self.error(404, "", "Not found")
        self.send_file(info, {"ETag": '"%s"' % info["sha256"]})

    # --- file bodies, with ranges and faults ---

    def send_file(self, info, headers):
        path = urllib.parse.urlsplit(self.path).path
        size = info["size"]
        if self.hub.fault(path, "serve_pointer") and info["lfs"]:
            data = info["pointer"]
            return self.answer(200, data, headers, "application/octet-stream")
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng and not self.hub.fault(path, "ignore_range"):
            try:
                unit, _, spec = rng.partition("=")
                a, _, b = spec.partition("-")
                start = int(a)
                end = int(b) if b else size - 1
                assert unit.strip() == "bytes"
            except (ValueError, AssertionError):
                return self.error(400, "", "Bad range")
            if start >= size or end < start:
                headers["Content-Range"] = "bytes */%d" % size
                return self.answer(416, b"", headers, "text/plain")
            end = min(end, size - 1)
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
        length = end - start + 1 if size else 0
        self.record(status)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "HEAD":
            return
        cut = self.hub.fault(path, "cut_after")
        hold = self.hub.fault(path, "hold_after")
        corrupt = self.hub.fault(path, "corrupt")
        rate = self.hub.fault(path, "rate")
        self.hub.body_started()
        try:
            self.send_body(info["path"], start, length, cut, hold, corrupt, rate)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.hub.body_ended()

    def send_body(self, path, start, length, cut, hold, corrupt, rate):
        plain = not (cut or hold or corrupt or rate)
        with open(path, "rb") as f:
            if plain:
                # the benchmark's path: the kernel copies the file
                self.wfile.flush()
                self.connection.sendfile(f, start, length)
                return
            f.seek(start)
            sent = 0
            limit = cut["cut_after"] if cut else None
            hold_at = hold["hold_after"] if hold else None
            while sent < length:
                n = min(65536, length - sent)
                if limit is not None:
                    n = min(n, limit - sent)
                if hold_at is not None and sent < hold_at:
                    n = min(n, hold_at - sent)
                if n > 0:
                    data = bytearray(f.read(n))
                    if corrupt:
                        off = corrupt["corrupt"] - (start + sent)
                        if 0 <= off < len(data):
                            data[off] ^= 0xFF
                    self.wfile.write(data)
                    sent += n
                    if rate:
                        time.sleep(n / rate["rate"])
                if limit is not None and sent >= limit:
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if hold_at is not None and sent >= hold_at:
                    self.wfile.flush()
                    self.hub.log_hold(self.path)
                    release = os.path.join(self.hub.state, "release")
                    while not os.path.exists(release):
                        time.sleep(0.05)
                    hold_at = None


def make_server(hub, cdn, tls):
    handler = type("BoundHandler", (Handler,), {"hub": hub, "is_cdn": cdn})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    return server


def watch_parent(pid):
    while True:
        time.sleep(0.5)
        try:
            os.kill(pid, 0)
        except OSError:
            os._exit(0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--state", required=True)
    p.add_argument("--repo", action="append", default=[])
    p.add_argument("--token")
    p.add_argument("--cdn", action="store_true")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--parent", type=int)
    args = p.parse_args()
    os.makedirs(args.state, exist_ok=True)
    hub = Hub(args)
    scheme = "https" if args.tls else "http"
    servers = [make_server(hub, False, args.tls)]
    hub.base = "%s://127.0.0.1:%d" % (scheme, servers[0].server_address[1])
    if args.cdn:
        servers.append(make_server(hub, True, args.tls))
        hub.cdn_base = "%s://127.0.0.1:%d" % (scheme, servers[1].server_address[1])
        write_atomic(os.path.join(args.state, "cdn_port"), str(servers[1].server_address[1]))
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    if args.parent:
        threading.Thread(target=watch_parent, args=(args.parent,), daemon=True).start()
    write_atomic(os.path.join(args.state, "port"), str(servers[0].server_address[1]))
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
