// The lookup-free quantizer (LFQuantizer of Gen-Verse/MMaDA models/modeling_magvitv2.py): codes from
// signs with channel 0 the high bit, and the ±1 codebook vectors of codes, on every backend.
import { Tensor } from '../../lib';
import * as mops from '../../lib/vision/magvit-ops';
import { DEVICES } from '../helpers/backends';
import { expectEqual } from '../helpers/compare';
import { lfqCodesRef, lfqEntriesRef } from '../helpers/magvit-ref';
import { randInt, uniform } from '../helpers/random';

describe.each(DEVICES)('lfq on %s', (device) => {
  test('encode equals get_indices(quantize(z)), including zeros (→ bit 0)', async () => {
    for (const [rows, D] of [[1, 1], [37, 13], [1000, 5], [9, 30]]) {
      const z = uniform(rows * D, -1, 1);
      for (let i = 0; i < z.length; i += 7) z[i] = i % 2 ? 0 : -0;
      const codes = await mops.lfqEncode(Tensor.from(z, [rows, D], { device }));
      expect(codes.dtype).toBe('i32');
      expect(codes.shape).toEqual([rows]);
      expectEqual(await codes.data(), lfqCodesRef(z, rows, D), `lfq encode ${rows}x${D}`);
    }
    // bit order: channel 0 is the most significant bit
    const one = await mops.lfqEncode(Tensor.from(Float32Array.from([1, -1, -1, -1, 1]), [1, 1, 5], { device }));
    expect(Array.from(await one.data())).toEqual([0b10001]);
  });

  test('decode equals get_codebook_entry and inverts encode', async () => {
    for (const [n, D] of [[1, 1], [64, 13], [333, 7]]) {
      const codes = randInt(n, 2 ** D);
      const z = await mops.lfqDecode(Tensor.from(codes, [n], { device, dtype: 'i32' }), D);
      expect(z.shape).toEqual([n, D]);
      const zv = await z.data();
      expectEqual(zv, lfqEntriesRef(codes, D), `lfq decode ${n}x${D}`);
      expectEqual(await (await mops.lfqEncode(z)).data(), codes, `lfq round trip ${n}x${D}`);
    }
    const all = await mops.lfqDecode(Tensor.from(Int32Array.from([8191, 0, 4096]), [3], { device, dtype: 'i32' }));
    expect(all.shape).toEqual([3, 13]);
  });

  test('a code outside the codebook and bad bit counts are errors', async () => {
    await expect(mops.lfqDecode(Tensor.from(Int32Array.from([3, 32]), [2], { device, dtype: 'i32' }), 5)).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/codebook \[0, 32\)/) });
    await expect(mops.lfqDecode(Tensor.from(Int32Array.from([-1]), [1], { device, dtype: 'i32' }), 5)).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(mops.lfqDecode(Tensor.from(Int32Array.from([1]), [1], { device, dtype: 'i32' }), 31)).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/bits/) });
    await expect(mops.lfqEncode(Tensor.from(uniform(31), [1, 31], { device }))).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/31 bits/) });
    await expect(mops.lfqDecode(Tensor.from(uniform(3), [3], { device }))).rejects.toMatchObject({ code: 'E_DTYPE' });
  });
});
