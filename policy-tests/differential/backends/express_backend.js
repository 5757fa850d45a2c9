#!/usr/bin/env node
// Express backends for the differential suite: the router's own reading of
// the path, with Express's default options (case-insensitive, non-strict:
// `/a/b/` is routed as `/a/b`).
//
//   node express_backend.js 4   Express 4: routes /:s1, /:s1/:s2, ... up to
//                               MAX_SEGMENTS; the reading is req.params in order
//                               (each decoded once by the router; a param that
//                               does not decode is Express's 400).
//   node express_backend.js 5   Express 5: one `/*splat` route; the reading is
//                               req.params.splat, the router's array of decoded
//                               segments.
//
// Every answer is 200 {"readings": {"express4"|"express5": {"segments": [...]}}};
// what the router does not match is its 404. Prints `listening on 127.0.0.1:PORT`.
"use strict";

const path = require("path");

const MAX_SEGMENTS = 16;
const major = process.argv[2];
if (major !== "4" && major !== "5") {
  console.error("usage: express_backend.js 4|5");
  process.exit(2);
}
const name = "express" + major;
const express = require(path.join(__dirname, "..", "node_modules", name));
const app = express();

function answer(res, segments) {
  res.json({ readings: { [name]: { segments } } });
}

app.get("/", (req, res) => answer(res, []));

if (major === "4") {
  for (let n = 1; n <= MAX_SEGMENTS; n++) {
    const keys = [];
    for (let i = 1; i <= n; i++) keys.push("s" + i);
    app.get("/" + keys.map((k) => ":" + k).join("/"), (req, res) =>
      answer(res, keys.map((k) => req.params[k]))
    );
  }
} else {
  app.get("/*splat", (req, res) => answer(res, req.params.splat));
}

// Express's own status for what it refuses (400 for a param that does not
// decode), without the stack trace finalhandler would log.
app.use((err, req, res, next) => {
  res.status(err.status || err.statusCode || 500).type("text/plain").send(String(err.message) + "\n");
});

const server = app.listen(0, "127.0.0.1", () => {
  console.log("listening on 127.0.0.1:" + server.address().port);
});
server.keepAliveTimeout = 30000;
