"""The nginx servers ``bench/bench.py`` compares the sidecar with, written whole (not the
shipped config): nginx alone, nginx's own ``secure_link``, and ``auth_request`` to an nginx
stub. Placeholders: USER, PREFIX, PORT, ROOT, SECRET, STUB_PORT, SERVERS."""

BASE = """\
user USER;
worker_processes 1;
pid PREFIX/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path PREFIX/tmp-body;
    proxy_temp_path PREFIX/tmp-proxy;
    fastcgi_temp_path PREFIX/tmp-fastcgi;
    uwsgi_temp_path PREFIX/tmp-uwsgi;
    scgi_temp_path PREFIX/tmp-scgi;
SERVERS
}
"""
PLAIN = """
    server { listen 127.0.0.1:PORT; root ROOT; }
"""
SECURE_LINK = """
    server {
        listen 127.0.0.1:PORT;
        root ROOT;
        location /books/ {
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri SECRET";
            if ($secure_link = "") { return 403; }
            if ($secure_link = "0") { return 410; }
        }
    }
"""
STUB = """
    upstream stub { server 127.0.0.1:STUB_PORT; keepalive 32; }
    server { listen 127.0.0.1:STUB_PORT; location / { return 204; } }
    server {
        listen 127.0.0.1:PORT;
        root ROOT;
        auth_request /_auth;
        location = /_auth {
            internal;
            proxy_pass http://stub/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }
    }
"""
