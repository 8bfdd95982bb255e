// Runs the reference ThumbHash encoder (npm package "thumbhash" 0.1.1, by the format's author,
// github.com/evanw/thumbhash) on raw RGBA files and prints {"hashes": {name: base64 hash},
// "cos": [[x, Math.cos(x)], ...]} as JSON (Node's own cosine, which the encoder uses).
// Usage: node make_vectors.mjs /path/to/package/thumbhash.js manifest.json
// (the package: `npm pack thumbhash@0.1.1 && tar xzf thumbhash-0.1.1.tgz`); make_vectors.py runs it.
import { readFileSync } from "node:fs"
import { pathToFileURL } from "node:url"

const [, , modulePath, manifestPath] = process.argv
const { rgbaToThumbHash } = await import(pathToFileURL(modulePath).href)
const { images, cosArgs } = JSON.parse(readFileSync(manifestPath, "utf8"))
const hashes = {}
for (const { name, width, height, rgba } of images) {
  const pixels = new Uint8Array(readFileSync(rgba))
  hashes[name] = Buffer.from(rgbaToThumbHash(width, height, pixels)).toString("base64")
}
console.log(JSON.stringify({ hashes, cos: cosArgs.map((x) => [x, Math.cos(x)]) }))
