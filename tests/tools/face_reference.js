#!/usr/bin/env node
// face_reference.js: the reference outputs the C face engine (src/face) is tested against. It runs
// the package's own JavaScript implementation (@vladmandic/face-api 1.7.15 on tfjs 4.22, wasm or
// pure-JS cpu backend, in Node) on raw RGB pixels decoded by the ffmpeg CLI, and writes one JSON
// fixture per picture: per detector (tiny at 416, SSD) every face with its box and score, the 68
// landmarks of the full and of the tiny network, the rectangles the later networks crop, the 128-D
// descriptor, age, gender and the 7 expressions; plus width, height and the sha256 of the RGB
// bytes, so that a test can prove it fed the engine the same pixels.
//
// The pipeline is the package's own chain (detectAllFaces().withFaceLandmarks()...), so the box a
// face's landmarks were computed from and the landmarks its descriptor/age/expressions were
// computed from are that face's own box and landmarks: each stage can be tested on the reference's
// inputs. Stage inputs (box, landmarks) keep 1e-6 px (the crops floor them); every other number
// is rounded to 6 significant digits.
//
// Usage (see tests/data/faces/README.md):
//   node face_reference.js --modules DIR --models DIR [--backend wasm|cpu] --out DIR IMAGE...
//   node face_reference.js --compare A.json B.json      (worst differences between two fixtures)
// --modules is the folder npm installed tests/tools/face-reference/package.json into (it holds
// node_modules/); --models the face-api model/ folder.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { execFileSync } = require('child_process');
const { createRequire } = require('module');

const EXPRESSIONS = ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised'];
const TINY = { inputSize: 416, scoreThreshold: 0.5 };
const SSD = { minConfidence: 0.5, maxResults: 100 };

function usage(msg) {
  if (msg) process.stderr.write(`face_reference: ${msg}\n`);
  process.stderr.write('usage: face_reference.js --modules DIR --models DIR [--backend wasm|cpu] --out DIR IMAGE...\n'
    + '       face_reference.js --compare A.json B.json\n');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { backend: 'wasm', images: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const val = () => { if (i + 1 >= argv.length) usage(`${k} needs a value`); return argv[++i]; };
    if (k === '--modules') a.modules = val();
    else if (k === '--models') a.models = val();
    else if (k === '--backend') a.backend = val();
    else if (k === '--out') a.out = val();
    else if (k === '--compare') { a.compare = [val(), val()]; }
    else if (k === '--help' || k === '-h') usage();
    else if (k.startsWith('--')) usage(`unknown option ${k}`);
    else a.images.push(k);
  }
  return a;
}

// ---- pixels ----------------------------------------------------------------------------------

// The picture as the ffmpeg CLI decodes it: no EXIF rotation, no colour management, rgb24.
function decodeRgb(file) {
  const probe = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries',
    'stream=width,height', '-of', 'csv=p=0', file]).toString().trim().split(',');
  const width = +probe[0];
  const height = +probe[1];
  if (!(width > 0 && height > 0)) throw new Error(`${file}: ffprobe gave no size`);
  const rgb = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-frames:v', '1', '-f', 'rawvideo',
    '-pix_fmt', 'rgb24', '-'], { maxBuffer: 1 << 30 });
  if (rgb.length !== width * height * 3) throw new Error(`${file}: ${rgb.length} bytes for ${width}x${height}`);
  return { width, height, rgb };
}

// ---- rounding --------------------------------------------------------------------------------

const r6 = (x) => +x.toPrecision(6);
// A micro-pixel: far below any tolerance, and a floor() of it lands where the exact value's does.
const px = (x) => +x.toFixed(6);
const box = (b) => ({ x: px(b.x), y: px(b.y), w: px(b.width), h: px(b.height) });
const box6 = (b) => ({ x: r6(b.x), y: r6(b.y), w: r6(b.width), h: r6(b.height) });
const points = (ps) => ps.map((p) => [px(p.x), px(p.y)]);

// ---- the reference pipeline ------------------------------------------------------------------

async function loadFaceApi(modulesDir, modelsDir, backend) {
  const req = createRequire(path.join(path.resolve(modulesDir), 'package.json'));
  const tf = req('@tensorflow/tfjs');
  const wasm = req('@tensorflow/tfjs-backend-wasm');
  const faceapi = req('@vladmandic/face-api/dist/face-api.node-wasm.js');
  const wasmDir = path.dirname(req.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  // false: no SIMD/threads feature probing over fetch; the files are on disk.
  wasm.setWasmPaths(path.join(wasmDir, 'dist') + path.sep, false);
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
  await tf.ready();
  for (const n of ['tinyFaceDetector', 'ssdMobilenetv1', 'faceLandmark68Net', 'faceLandmark68TinyNet',
    'faceRecognitionNet', 'ageGenderNet', 'faceExpressionNet']) {
    await faceapi.nets[n].loadFromDisk(modelsDir);
  }
  const version = (p) => JSON.parse(fs.readFileSync(req.resolve(`${p}/package.json`))).version;
  const versions = {
    'face-api': version('@vladmandic/face-api'),
    tfjs: version('@tensorflow/tfjs'),
    'tfjs-backend-wasm': version('@tensorflow/tfjs-backend-wasm'),
    'tfjs-backend-cpu': version('@tensorflow/tfjs-backend-cpu'),
  };
  return { tf, faceapi, versions };
}

function detectorOptions(faceapi, name) {
  return name === 'tiny' ? new faceapi.TinyFaceDetectorOptions(TINY) : new faceapi.SsdMobilenetv1Options(SSD);
}

// One face of the full chain, plus the tiny landmark net's points for the same detection.
function faceRecord(r, tinyLandmarks) {
  const ex = {};
  for (const e of EXPRESSIONS) ex[e] = r6(r.expressions[e]);
  return {
    box: box(r.detection.box),
    score: r6(r.detection.score),
    landmarks: points(r.landmarks.positions),
    landmarks_tiny: tinyLandmarks ? points(tinyLandmarks.positions) : null,
    // What the later networks crop (clipped to the image and floored by the package):
    // age/gender and expressions the landmarks' box padded 20%, recognition the eye/mouth box.
    attributes_box: box6(r.alignedRect.box),
    descriptor_box: box6(r.landmarks.align(null, { useDlibAlignment: true })),
    descriptor: Array.from(r.descriptor, r6),
    age: r6(r.age),
    gender: r.gender,
    gender_probability: r6(r.genderProbability),
    expressions: ex,
  };
}

async function runDetector(faceapi, input, name) {
  const opt = detectorOptions(faceapi, name);
  const full = await faceapi.detectAllFaces(input, opt).withFaceLandmarks().withFaceExpressions()
    .withFaceDescriptors().withAgeAndGender();
  const tiny = await faceapi.detectAllFaces(input, opt).withFaceLandmarks(true);
  // Both chains start from the same deterministic detection, so faces pair up by index; check it.
  return full.map((r, i) => {
    const t = tiny[i];
    const same = t && t.detection.box.x === r.detection.box.x && t.detection.box.y === r.detection.box.y;
    if (!same) throw new Error(`${name}: detection ${i} differs between two runs`);
    return faceRecord(r, t.landmarks);
  });
}

async function makeFixture(api, file) {
  const { tf, faceapi, versions } = api;
  const { width, height, rgb } = decodeRgb(file);
  const input = tf.tensor3d(new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.length), [height, width, 3], 'int32');
  const fixture = {
    generator: 'tests/tools/face_reference.js',
    versions,
    backend: tf.getBackend(),
    image: path.basename(file),
    width,
    height,
    rgb_sha256: crypto.createHash('sha256').update(rgb).digest('hex'),
    options: { tiny: { input_size: TINY.inputSize, score_threshold: TINY.scoreThreshold },
      ssd: { min_confidence: SSD.minConfidence, max_results: SSD.maxResults } },
    expressions_order: EXPRESSIONS,
    detectors: {},
  };
  for (const name of ['tiny', 'ssd']) fixture.detectors[name] = { faces: await runDetector(faceapi, input, name) };
  input.dispose();
  return fixture;
}

// ---- comparing two fixtures (e.g. wasm against cpu) -------------------------------------------

function compare(fa, fb) {
  const a = JSON.parse(fs.readFileSync(fa));
  const b = JSON.parse(fs.readFileSync(fb));
  if (a.rgb_sha256 !== b.rgb_sha256) throw new Error('different pixels');
  const worst = {};
  const upd = (k, v) => { worst[k] = Math.max(worst[k] || 0, v); };
  const ptd = (p, q) => Math.max(...p.map((pt, i) => Math.hypot(pt[0] - q[i][0], pt[1] - q[i][1])));
  for (const d of ['tiny', 'ssd']) {
    const A = a.detectors[d].faces;
    const B = b.detectors[d].faces;
    if (A.length !== B.length) { console.log(`${d}: ${A.length} faces against ${B.length}`); continue; }
    A.forEach((f, i) => {
      const g = B[i];
      upd(`${d} box px`, Math.max(...['x', 'y', 'w', 'h'].map((k) => Math.abs(f.box[k] - g.box[k]))));
      upd(`${d} score`, Math.abs(f.score - g.score));
      upd(`${d} landmarks px`, ptd(f.landmarks, g.landmarks));
      upd(`${d} landmarks_tiny px`, ptd(f.landmarks_tiny, g.landmarks_tiny));
      upd(`${d} descriptor L2`, Math.hypot(...f.descriptor.map((v, j) => v - g.descriptor[j])));
      upd(`${d} age`, Math.abs(f.age - g.age));
      const pm = (x) => (x.gender === 'male' ? x.gender_probability : 1 - x.gender_probability);
      upd(`${d} P(male)`, Math.abs(pm(f) - pm(g)));
      upd(`${d} expressions`, Math.max(...EXPRESSIONS.map((e) => Math.abs(f.expressions[e] - g.expressions[e]))));
    });
  }
  for (const [k, v] of Object.entries(worst)) console.log(`${path.basename(fa)}\t${k}\t${v.toPrecision(3)}`);
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (a.compare) { compare(a.compare[0], a.compare[1]); return; }
  if (!a.modules || !a.models || !a.out || a.images.length === 0) usage('--modules, --models, --out and an image are needed');
  if (a.backend !== 'wasm' && a.backend !== 'cpu') usage('--backend is wasm or cpu');
  const api = await loadFaceApi(a.modules, a.models, a.backend);
  fs.mkdirSync(a.out, { recursive: true });
  for (const file of a.images) {
    const fx = await makeFixture(api, file);
    const out = path.join(a.out, `${path.parse(file).name}.json`);
    fs.writeFileSync(`${out}.tmp`, `${JSON.stringify(fx)}\n`);
    fs.renameSync(`${out}.tmp`, out);
    console.log(`${out}: ${fx.width}x${fx.height}, tiny ${fx.detectors.tiny.faces.length} faces, ssd ${fx.detectors.ssd.faces.length}`);
  }
}

main().catch((e) => { process.stderr.write(`face_reference: ${e.stack || e}\n`); process.exit(1); });
