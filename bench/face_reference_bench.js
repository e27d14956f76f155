#!/usr/bin/env node
// face_reference_bench.js: the reference implementation's speed, for bench/face.sh to set beside
// the C engine's (bench/face_bench.c) in the same run on the same machine. face-api 1.7.15 on
// tfjs 4.22 with the wasm backend (or cpu), in Node, on raw RGB decoded by the ffmpeg CLI (the
// decode is not timed, as on the C side): per picture, the whole pipeline
//   detectAllFaces(img, options).withFaceLandmarks().withFaceExpressions()
//     .withFaceDescriptors().withAgeAndGender()
// with the tiny detector (416) and with SSD MobileNet v1; median of RUNS runs after WARMUP.
// One line per picture and detector:
//   ref <backend> <picture> <tiny|ssd> median_ms=<ms> min_ms=<ms> faces=<n>
// Usage: node face_reference_bench.js --modules DIR --models DIR [--backend wasm|cpu]
//          [--runs N] [--warmup N] IMAGE...
// --modules: where npm installed tests/tools/face-reference/package.json (holds node_modules/).
'use strict';

const path = require('path');
const { execFileSync } = require('child_process');
const { createRequire } = require('module');

function usage(msg) {
  if (msg) process.stderr.write(`face_reference_bench: ${msg}\n`);
  process.stderr.write('usage: face_reference_bench.js --modules DIR --models DIR [--backend wasm|cpu] [--runs N] [--warmup N] IMAGE...\n');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { backend: 'wasm', runs: 10, warmup: 2, images: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const val = () => { if (i + 1 >= argv.length) usage(`${k} needs a value`); return argv[++i]; };
    if (k === '--modules') a.modules = val();
    else if (k === '--models') a.models = val();
    else if (k === '--backend') a.backend = val();
    else if (k === '--runs') a.runs = +val();
    else if (k === '--warmup') a.warmup = +val();
    else if (k.startsWith('--')) usage(`unknown option ${k}`);
    else a.images.push(k);
  }
  if (!a.modules || !a.models || a.images.length === 0) usage('--modules, --models and an image are needed');
  if (!(a.runs >= 1 && a.warmup >= 0)) usage('--runs >= 1, --warmup >= 0');
  return a;
}

function decodeRgb(file) {
  const [w, h] = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries',
    'stream=width,height', '-of', 'csv=p=0', file]).toString().trim().split(',').map(Number);
  const rgb = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-frames:v', '1', '-f', 'rawvideo',
    '-pix_fmt', 'rgb24', '-'], { maxBuffer: 1 << 30 });
  if (!(w > 0 && h > 0) || rgb.length !== w * h * 3) throw new Error(`${file}: cannot decode`);
  return { w, h, rgb };
}

const median = (xs) => { const s = [...xs].sort((p, q) => p - q); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const req = createRequire(path.join(path.resolve(a.modules), 'package.json'));
  const tf = req('@tensorflow/tfjs');
  const wasm = req('@tensorflow/tfjs-backend-wasm');
  const faceapi = req('@vladmandic/face-api/dist/face-api.node-wasm.js');
  wasm.setWasmPaths(path.join(path.dirname(req.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep, false);
  if (!(await tf.setBackend(a.backend))) throw new Error(`backend ${a.backend} did not start`);
  await tf.ready();
  for (const n of ['tinyFaceDetector', 'ssdMobilenetv1', 'faceLandmark68Net', 'faceRecognitionNet', 'ageGenderNet', 'faceExpressionNet']) {
    await faceapi.nets[n].loadFromDisk(a.models);
  }
  if (a.backend === 'wasm') {
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const mt = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    console.log(`# wasm: simd=${simd} threads=${mt}`);
  }
  const opts = { tiny: new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 }),
    ssd: new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5, maxResults: 100 }) };
  for (const file of a.images) {
    const { w, h, rgb } = decodeRgb(file);
    const input = tf.tensor3d(new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.length), [h, w, 3], 'int32');
    for (const det of ['tiny', 'ssd']) {
      const times = [];
      let faces = 0;
      for (let i = 0; i < a.warmup + a.runs; i++) {
        const t0 = performance.now();
        const r = await faceapi.detectAllFaces(input, opts[det]).withFaceLandmarks().withFaceExpressions()
          .withFaceDescriptors().withAgeAndGender();
        const ms = performance.now() - t0;
        faces = r.length;
        if (i >= a.warmup) times.push(ms);
      }
      console.log(`ref ${a.backend} ${path.basename(file)} ${det} median_ms=${median(times).toFixed(1)} min_ms=${Math.min(...times).toFixed(1)} faces=${faces}`);
    }
    input.dispose();
  }
}

main().catch((e) => { process.stderr.write(`face_reference_bench: ${e.stack || e}\n`); process.exit(1); });
