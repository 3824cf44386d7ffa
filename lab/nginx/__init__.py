"""The lab's nginx: config rendering from ``nginx/*.j2`` (:mod:`lab.nginx.render`), ``nginx -t``
(:mod:`lab.nginx.check`), a per-run CA and certificates (:mod:`lab.nginx.tls`) and the
``stub_status`` parser (:mod:`lab.nginx.status`)."""
