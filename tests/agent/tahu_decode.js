// Decode Sparkplug B payloads with Eclipse Tahu's JavaScript codec (npm sparkplug-payload), the
// independent implementation the tests check our encoder against. Input: JSON lines
// {"topic": ..., "b64": ...}; output: one JSON line per message. Longs are printed as strings
// (exact); DATA metrics carry no datatype (as the spec wants), so the raw protobuf message is
// decoded too: decodePayload() alone gives no value for them.
"use strict";
const path = require("path");
const readline = require("readline");
const root = process.argv[2];
const tahu = require(path.join(root, "sparkplug-payload")).get("spBv1.0");
const proto = require(path.join(root, "sparkplug-payload", "lib", "sparkplugPayloadProto.js"));
const Payload = proto.org.eclipse.tahu.protobuf.Payload;

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  const { topic, b64 } = JSON.parse(line);
  const buf = Buffer.from(b64, "base64");
  const out = { topic };
  try {
    const raw = Payload.toObject(Payload.decode(buf), { longs: String, oneofs: true, defaults: false });
    out.raw = raw;
    const decoded = tahu.decodePayload(buf); // the Tahu API (names, types on births)
    out.tahu_metrics = (decoded.metrics || []).map((m) => ({ name: m.name, type: m.type }));
  } catch (e) {
    out.error = String(e);
  }
  process.stdout.write(JSON.stringify(out) + "\n");
});
