package io.olmoppl.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The scan's bit test against the JDK's {@link Float#isFinite}, element by element. */
class WeightScanTest {

  @Test
  void everyHalfAndBfloat16BitPatternIsJudgedAsTheJdkJudgesItsFloatValue() {
    for (int bits = 0; bits < 1 << 16; bits++) {
      ByteBuffer one =
          ByteBuffer.allocate(2).order(ByteOrder.LITTLE_ENDIAN).putShort(0, (short) bits);
      // bf16 is the upper half of a float32; the JDK widens it without project code
      boolean bfFinite = Float.isFinite(Float.intBitsToFloat(bits << 16));
      assertEquals(!bfFinite, WeightScan.anyNonFinite(DType.BF16, one), "bf16 " + bits);
      // binary16: non-finite exactly when its 5 exponent bits are all ones (IEEE 754)
      boolean halfFinite = ((bits >> 10) & 0x1F) != 0x1F;
      assertEquals(!halfFinite, WeightScan.anyNonFinite(DType.F16, one), "f16 " + bits);
    }
  }

  @Test
  void float32PatternsAreJudgedAsTheJdkJudgesThem() {
    SplittableRandom r = new SplittableRandom(7);
    int[] special = {
      0,
      0x80000000,
      0x7F7FFFFF,
      0xFF7FFFFF,
      0x7F800000,
      0xFF800000,
      0x7FC00000,
      0x7F800001,
      0xFFFFFFFF,
      0x00000001,
      0x00800000,
      0x3F800000
    };
    for (int i = 0; i < 200_000; i++) {
      int bits = i < special.length ? special[i] : r.nextInt();
      ByteBuffer one = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, bits);
      assertEquals(
          !Float.isFinite(Float.intBitsToFloat(bits)),
          WeightScan.anyNonFinite(DType.F32, one),
          Integer.toHexString(bits));
    }
  }

  @Test
  void oneBadElementAnywhereInALongBufferIsFound() {
    int n = 3 * (1 << 14) + 5; // blocks and a remainder
    ByteBuffer b = ByteBuffer.allocateDirect(4 * n).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < n; i++) {
      b.putFloat(4 * i, (i % 7) - 3.5f);
    }
    assertFalse(WeightScan.anyNonFinite(DType.F32, b));
    for (int at : new int[] {0, (1 << 14) - 1, 1 << 14, n - 1}) {
      b.putFloat(4 * at, Float.NaN);
      assertTrue(WeightScan.anyNonFinite(DType.F32, b), "NaN at " + at);
      b.putFloat(4 * at, 1f);
    }
    assertFalse(WeightScan.anyNonFinite(DType.F32, b));
  }
}
