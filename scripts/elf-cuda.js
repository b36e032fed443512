// Reads what a built addon holds without CUDA tools (cuobjdump is not part of every toolkit install):
// the ELF's shared-library dependencies and the CUDA code in its .nv_fatbin section, one fat binary per
// .cu file, each with real code (ELF, "sm_XX") and/or PTX ("compute_XX") entries.
//
// Fat binary layout (as nvcc 12-13 writes it; checked against this project's builds): a 16-byte header
// (magic 0xBA55ED50, u16 version, u16 header size, u64 payload size), then entries, each a header
// (u16 kind: 1 = PTX, 2 = ELF; u16; u32 header size; u64 payload size; ...; u32 arch at offset 28)
// followed by its payload. Fat binaries follow each other, 8-byte aligned.
'use strict';
const fs = require('fs');

const FATBIN_MAGIC = 0xba55ed50;

function sections(buf) {
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) throw new Error('not a 64-bit little-endian ELF file');
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a), shnum = buf.readUInt16LE(0x3c), shstrndx = buf.readUInt16LE(0x3e);
  const raw = [];
  for (let i = 0; i < shnum; ++i) {
    const o = shoff + i * shentsize;
    raw.push({
      nameOff: buf.readUInt32LE(o), type: buf.readUInt32LE(o + 4),
      offset: Number(buf.readBigUInt64LE(o + 0x18)), size: Number(buf.readBigUInt64LE(o + 0x20)), link: buf.readUInt32LE(o + 0x28),
    });
  }
  const names = raw[shstrndx];
  return raw.map((s) => ({ ...s, name: buf.toString('latin1', names.offset + s.nameOff, buf.indexOf(0, names.offset + s.nameOff)) }));
}

/** DT_NEEDED entries: the shared libraries the loader must find. */
function needed(buf) {
  const secs = sections(buf);
  const dyn = secs.find((s) => s.name === '.dynamic');
  if (!dyn) return [];
  const strtab = secs[dyn.link];
  const out = [];
  for (let o = dyn.offset; o + 16 <= dyn.offset + dyn.size; o += 16) {
    const tag = Number(buf.readBigInt64LE(o));
    if (tag === 0) break;
    if (tag === 1) {
      const at = strtab.offset + Number(buf.readBigUInt64LE(o + 8));
      out.push(buf.toString('latin1', at, buf.indexOf(0, at)));
    }
  }
  return out;
}

/** The fat binaries in .nv_fatbin: for each, its entries as nvcc names ('sm_90', 'compute_90'). */
function fatbins(buf) {
  const sec = sections(buf).find((s) => s.name === '.nv_fatbin');
  if (!sec) return [];
  const out = [];
  let p = sec.offset;
  const end = sec.offset + sec.size;
  while (p + 16 <= end) {
    if (buf.readUInt32LE(p) !== FATBIN_MAGIC) {
      if (buf.readUInt32LE(p) === 0) { p += 8; continue; }  // alignment padding
      throw new Error(`.nv_fatbin: no fat binary header at offset ${p - sec.offset}`);
    }
    const headerSize = buf.readUInt16LE(p + 6), size = Number(buf.readBigUInt64LE(p + 8));
    const entries = [];
    for (let q = p + headerSize; q < p + headerSize + size;) {
      const kind = buf.readUInt16LE(q), ehs = buf.readUInt32LE(q + 4), esz = Number(buf.readBigUInt64LE(q + 8));
      const arch = buf.readUInt32LE(q + 28);
      if (kind === 1) entries.push(`compute_${arch}`);
      else if (kind === 2) entries.push(`sm_${arch}`);
      else throw new Error(`.nv_fatbin: unknown entry kind ${kind}`);
      q += ehs + esz;
    }
    out.push(entries);
    p = (p + headerSize + size + 7) & ~7;
  }
  return out;
}

function inspect(file) {
  const buf = fs.readFileSync(file);
  return { bytes: buf.length, needed: needed(buf), fatbins: fatbins(buf) };
}

module.exports = { inspect, needed, fatbins, sections };

if (require.main === module) console.log(JSON.stringify(inspect(process.argv[2]), null, 1));
