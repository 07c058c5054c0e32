// A wasi:http handler written in JavaScript, built into a component with `jco componentize`
// (StarlingMonkey's fetch-event support). `GET` answers a greeting naming the method and path;
// a request with a body gets it back unchanged, read to its end, with `x-body-bytes` giving
// its length. Built by handlers/other/build.sh.

async function handle(request) {
  const url = new URL(request.url);
  const body = new Uint8Array(await request.arrayBuffer());
  if (body.length > 0 || request.method === "POST" || request.method === "PUT") {
    return new Response(body, {
      status: 200,
      headers: {
        "content-type": "application/octet-stream",
        "x-body-bytes": String(body.length),
      },
    });
  }
  const text = `hello from javascript: ${request.method} ${url.pathname}${url.search}\n`;
  return new Response(text, { status: 200, headers: { "content-type": "text/plain" } });
}

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));
