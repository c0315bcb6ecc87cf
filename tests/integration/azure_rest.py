"""A small Azure Blob service client for the tests (containers, blobs, listings, block lists),
plain HTTP with Shared Key signing written here from Azure's "Authorize with Shared Key" page,
independently of src/storage/azure.c: a test that passes has two signers agreeing with Azurite."""
import base64
import hashlib
import hmac
import http.client
import re
import urllib.parse
from email.utils import formatdate

API_VERSION = "2021-08-06"


class AzureError(Exception):
    def __init__(self, status, body):
        super().__init__(f"Azure answered {status}: {body[:500]!r}")
        self.status, self.body = status, body


class AzureBlobClient:
    def __init__(self, endpoint, account, key):
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port = u.hostname, u.port or 80
        self.base_path = u.path.rstrip("/")  # "/devstoreaccount1" for an emulator
        self.account, self.key = account, base64.b64decode(key)

    def _sign(self, method, path, query, headers, length):
        std = ["Content-Encoding", "Content-Language", None, "Content-MD5", "Content-Type", "Date",
               "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range"]
        low = {k.lower(): v for k, v in headers.items()}
        lines = [method]
        for h in std:
            lines.append((str(length) if length else "") if h is None else low.get(h.lower(), ""))
        ms = sorted((k, v.strip()) for k, v in low.items() if k.startswith("x-ms-"))
        text = "\n".join(lines) + "\n" + "".join(f"{k}:{v}\n" for k, v in ms)
        text += f"/{self.account}{path}"
        for k in sorted(query):
            text += f"\n{k.lower()}:{query[k]}"
        mac = hmac.new(self.key, text.encode(), hashlib.sha256).digest()
        return base64.b64encode(mac).decode()

    def request(self, method, name, query=None, headers=None, body=b"", ok=(200, 201, 202, 206)):
        """name: "container" or "container/blob" (not encoded). Returns (status, headers, body)."""
        query = dict(query or {})
        path = self.base_path + "/" + urllib.parse.quote(name, safe="/~")
        headers = dict(headers or {})
        headers["x-ms-date"] = formatdate(usegmt=True)
        headers["x-ms-version"] = API_VERSION
        if body or method in ("PUT", "POST"):
            headers.setdefault("Content-Type", "application/octet-stream")
        headers["Content-Length"] = str(len(body))
        headers["Authorization"] = f"SharedKey {self.account}:" + self._sign(method, path, query, headers, len(body))
        qs = urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="~")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path + ("?" + qs if qs else ""), body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if ok and resp.status not in ok:
            raise AzureError(resp.status, data)
        return resp.status, resp.headers, data  # (headers: case-insensitive)

    def account_sas(self, permissions="rwdlac", expiry="2099-01-01T00:00:00Z"):
        """An account SAS token (blob service; service, container and object resources), signed
        with the account key as Azure's "Create an account SAS" page says."""
        fields = {"sv": API_VERSION, "ss": "b", "srt": "sco", "sp": permissions, "se": expiry, "spr": "https,http"}
        text = "\n".join([self.account, permissions, "b", "sco", "", expiry, "", "https,http", API_VERSION, ""]) + "\n"
        fields["sig"] = base64.b64encode(hmac.new(self.key, text.encode(), hashlib.sha256).digest()).decode()
        return urllib.parse.urlencode(fields, quote_via=urllib.parse.quote, safe="")

    # --- containers -------------------------------------------------------------------------
    def create_container(self, container):
        self.request("PUT", container, {"restype": "container"})

    def delete_container(self, container):
        self.request("DELETE", container, {"restype": "container"}, ok=(202, 404))

    # --- blobs --------------------------------------------------------------------------------
    def put_blob(self, container, blob, data):
        self.request("PUT", f"{container}/{blob}", headers={"x-ms-blob-type": "BlockBlob"}, body=data)

    def get_blob(self, container, blob):
        return self.request("GET", f"{container}/{blob}")[2]

    def blob_size(self, container, blob):
        return int(self.request("HEAD", f"{container}/{blob}")[1]["Content-Length"])

    def committed_blocks(self, container, blob):
        """The ids of the blob's committed blocks (none for a blob written by one Put Blob)."""
        body = self.request("GET", f"{container}/{blob}", {"comp": "blocklist", "blocklisttype": "committed"})[2]
        committed = re.search(rb"<CommittedBlocks>(.*?)</CommittedBlocks>", body, re.S)
        return re.findall(rb"<Name>(.*?)</Name>", committed.group(1)) if committed else []

    def list_blobs(self, container, prefix=""):
        """Every blob name under prefix, in Azure's (lexical) order, through NextMarker pages."""
        names, marker = [], ""
        while True:
            q = {"restype": "container", "comp": "list", "maxresults": "1000"}
            if prefix:
                q["prefix"] = prefix
            if marker:
                q["marker"] = marker
            body = self.request("GET", container, q)[2].decode()
            names += [urllib.parse.unquote(n) if 'Encoded="true"' in a else _xml_unescape(n)
                      for a, n in re.findall(r"<Blob>\s*<Name([^>]*)>(.*?)</Name>", body, re.S)]
            m = re.search(r"<NextMarker>(.*?)</NextMarker>", body)
            marker = _xml_unescape(m.group(1)) if m else ""
            if not marker:
                return names

    def delete_blob(self, container, blob):
        self.request("DELETE", f"{container}/{blob}", ok=(202, 404))


def _xml_unescape(s):
    return (s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'")
            .replace("&amp;", "&"))
