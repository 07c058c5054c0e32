-- wrk script: POST a 10 KiB body (10240 bytes of "x") to the echo app, keep-alive.
-- Usage: wrk -s bench/post10k.lua http://127.0.0.1:PORT/
wrk.method = "POST"
wrk.body = string.rep("x", 10240)
wrk.headers["Content-Type"] = "application/octet-stream"
