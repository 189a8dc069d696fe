// The official `openai` npm package (pinned, installed by scripts/install-deps)
// against a running group: the calls an SDK user makes, each checked. Run by
// openai_sdk_e2e.py, which starts the group. No hand-written client: every
// request goes through the SDK (JSON create through its generic post()).
//
// env: BASE_URL (http://127.0.0.1:PORT/v1), MODEL (the served model's name),
//      API_KEY (optional: the key the server needs), NODE_PATH (the SDK).
"use strict";
const assert = require("node:assert/strict");
const { OpenAI } = require("openai");

const baseURL = process.env.BASE_URL;
const model = process.env.MODEL;
const key = process.env.API_KEY || "";
// A keyless server ignores the header; the SDK needs some key to start.
const client = new OpenAI({ baseURL, apiKey: key || "none", maxRetries: 0, timeout: 600000 });
const small = { prompt: "a red ball bouncing", seconds: "0.36", size: "64x64", num_inference_steps: 2 };

async function refused(call, status, text, param) {
  try {
    await call();
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `not an APIError: ${e}`);
    assert.equal(e.status, status, `status of ${e.message}`);
    assert.ok(e.message.includes(text), `"${e.message}" does not say "${text}"`);
    if (param !== undefined) assert.equal(e.param, param);
    console.log(`  refused as it must: ${e.constructor.name} ${e.message}`);
    return;
  }
  assert.fail(`expected ${status} "${text}"`);
}

async function finished(id) {
  for (let i = 0; i < 6000; i++) {
    const v = await client.videos.retrieve(id);
    assert.equal(v.object, "video");
    assert.ok(Number.isInteger(v.progress) && v.progress >= 0 && v.progress <= 100, `progress ${v.progress}`);
    if (v.status === "completed" || v.status === "failed") return v;
    assert.ok(["queued", "in_progress"].includes(v.status), v.status);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`video ${id} did not finish`);
}

(async () => {
  // models.list: the one model this group serves, by name.
  const models = await client.models.list();
  assert.equal(models.data.length, 1);
  assert.equal(models.data[0].id, model);
  assert.equal(models.data[0].object, "model");
  assert.equal(typeof models.data[0].owned_by, "string");
  assert.ok(Number.isInteger(models.data[0].created));
  console.log(`  models.list: ${models.data[0].id}`);

  // videos.create as the SDK sends it: multipart/form-data.
  const made = await client.videos.create({ model, ...small });
  assert.equal(made.object, "video");
  assert.equal(made.model, model);
  assert.ok(["queued", "in_progress"].includes(made.status), made.status);
  assert.equal(made.size, "64x64");
  assert.equal(made.seconds, "0.36");
  assert.equal(made.num_frames, 9, "0.36 s at 25 fps is 9 frames");
  const done = await finished(made.id);
  assert.equal(done.status, "completed", JSON.stringify(done.error));
  assert.equal(done.progress, 100);
  assert.ok(done.completed_at >= done.created_at);
  console.log(`  videos.create (multipart) -> ${done.id} completed`);

  // The same fields as JSON.
  const json = await client.post("/videos", { body: { model, ...small, seed: 7 } });
  assert.equal(json.object, "video");
  assert.equal((await finished(json.id)).status, "completed");
  console.log(`  videos.create (JSON) -> ${json.id} completed`);

  // downloadContent: the MP4 (checked by the caller with ffprobe) and the thumbnail.
  const mp4 = Buffer.from(await (await client.videos.downloadContent(made.id)).arrayBuffer());
  assert.equal(mp4.subarray(4, 8).toString(), "ftyp", "an MP4 starts with an ftyp box");
  require("node:fs").writeFileSync(process.env.MP4_OUT, mp4);
  const thumb = await client.videos.downloadContent(made.id, { variant: "thumbnail" });
  assert.equal(thumb.headers.get("content-type"), "image/png");
  const png = Buffer.from(await thumb.arrayBuffer());
  assert.equal(png.subarray(1, 4).toString(), "PNG");
  console.log(`  downloadContent: ${mp4.length} bytes of MP4, ${png.length} bytes of PNG thumbnail`);

  // list with the SDK's pagination: three more, two per page, oldest first.
  const more = [];
  for (let i = 0; i < 3; i++) more.push((await client.videos.create({ model, ...small })).id);
  for (const id of more) await finished(id);
  const seen = [];
  for await (const v of client.videos.list({ limit: 2, order: "asc" })) seen.push(v.id);
  const all = [made.id, json.id, ...more];
  assert.deepEqual(seen.slice(-all.length), all, "every video once, in creation order");
  const first = await client.videos.list({ limit: 2 });
  assert.equal(first.data.length, 2);
  assert.equal(first.data[0].id, more[2], "newest first by default");
  assert.ok(first.hasNextPage());
  const second = await first.getNextPage();
  assert.equal(second.data[0].id, more[0]);
  console.log(`  list: ${seen.length} videos over pages of 2`);

  // delete: a finished one goes; a queued one is cancelled and reads as failed.
  const deleted = await client.videos.delete(more[0]);
  assert.deepEqual(deleted, { id: more[0], object: "video.deleted", deleted: true });
  await refused(() => client.videos.retrieve(more[0]), 404, "no video");
  const slow = await client.videos.create({ model, prompt: "slow", size: "512x512", seconds: "2", num_inference_steps: 60 });
  const cancelled = await client.videos.delete(slow.id);
  assert.equal(cancelled.id, slow.id);
  assert.ok(["failed", "in_progress"].includes(cancelled.status), cancelled.status);
  const ended = await finished(slow.id);
  assert.equal(ended.status, "failed");
  assert.equal(ended.error.code, "cancelled");
  console.log(`  delete: finished one deleted, running one cancelled (${ended.error.message})`);

  // Errors arrive as the SDK's APIError with status and message.
  await refused(() => client.videos.create({ model: "sora-2", prompt: "x" }), 404, "model 'sora-2' is not served", "model");
  await refused(() => client.videos.create({ model, prompt: "x", size: "100x100" }), 422, "width", "width");
  await refused(() => client.videos.create({ model, prompt: "x", size: "big" }), 422, "size must be WIDTHxHEIGHT", "size");
  await refused(() => client.videos.create({ model, prompt: "x", input_reference: { image_url: "https://example.com/a.png" } }),
                422, "not supported by this model", "input_reference");
  if (key) {
    const wrong = new OpenAI({ baseURL, apiKey: key + "x", maxRetries: 0 });
    await refused(() => wrong.models.list(), 401, "API key");
    await refused(() => wrong.videos.create({ model, ...small }), 401, "API key");
  }
  console.log("openai sdk: all checks passed");
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
