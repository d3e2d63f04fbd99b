package io.olmoppl.checkpoint;

import java.nio.ByteBuffer;
import java.util.Locale;

/**
 * The safetensors dtypes this project reads. Everything is widened to float32 before it reaches the
 * engine.
 */
public enum DType {
  F32(4),
  F16(2),
  BF16(2);

  private final int bytes;

  DType(int bytes) {
    this.bytes = bytes;
  }

  /**
   * @return bytes per element
   */
  public int bytes() {
    return bytes;
  }

  /**
   * @return the name config.json gives the dtype ({@code torch_dtype})
   */
  public String torchName() {
    return switch (this) {
      case F32 -> "float32";
      case F16 -> "float16";
      case BF16 -> "bfloat16";
    };
  }

  /**
   * @param name the safetensors dtype string, e.g. {@code "BF16"}
   * @return the dtype
   * @throws CheckpointException for dtypes a floating-point OLMo checkpoint never uses
   */
  public static DType parse(String name, String tensor, String file) {
    try {
      return valueOf(name.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(
          "tensor "
              + tensor
              + " in "
              + file
              + " has dtype "
              + name
              + ", but olmo-ppl reads only F32, F16 and BF16 weights. Convert the checkpoint to one of"
              + " them (e.g. save it again with torch_dtype float32 or bfloat16).");
    }
  }

  /** Widens one stored element (read little-endian from {@code raw}) to float, exactly. */
  static float widen(DType d, ByteBuffer raw, int byteIndex) {
    switch (d) {
      case F32:
        return raw.getFloat(byteIndex);
      case F16:
        return halfToFloat(raw.getShort(byteIndex));
      default:
        // bf16 is the upper half of a float32
        return Float.intBitsToFloat((raw.getShort(byteIndex) & 0xFFFF) << 16);
    }
  }

  /** IEEE 754 binary16 to float, exactly (Java 17 has no {@code Float.float16ToFloat}). */
  public static float halfToFloat(short h) {
    int bits = h & 0xFFFF;
    int sign = (bits & 0x8000) << 16;
    int exp = (bits >>> 10) & 0x1F;
    int mant = bits & 0x3FF;
    if (exp == 0x1F) {
      return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13)); // inf / nan
    }
    if (exp == 0) {
      float v = mant * 0x1p-24f; // subnormal: mant * 2^-24, exact in float
      return sign == 0 ? v : -v;
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  }

  /** float to binary16, round to nearest even (used only to write F16 checkpoints). */
  public static short floatToHalf(float f) {
    int bits = Float.floatToRawIntBits(f);
    int sign = (bits >>> 16) & 0x8000;
    int val = (bits & 0x7FFFFFFF);
    if (val >= 0x7F800000) {
      return (short) (sign | 0x7C00 | (val > 0x7F800000 ? 0x200 : 0));
    }
    if (val >= 0x477FF000) { // rounds to >= 65520: overflow to inf
      return (short) (sign | 0x7C00);
    }
    if (val < 0x38800000) { // subnormal half or zero
      float a = Float.intBitsToFloat(val);
      int m =
          Math.round(
              a * 0x1p24f); // ties: Math.round is half-up; acceptable for random init writing
      return (short) (sign | m);
    }
    int e = ((val >>> 23) - 112) << 10;
    int m = val & 0x7FFFFF;
    int half = e | (m >>> 13);
    int rest = m & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1) == 1)) {
      half++;
    }
    return (short) (sign | half);
  }

  /** float to bf16, round to nearest even. */
  public static short floatToBf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if ((bits & 0x7FFFFFFF) > 0x7F800000) {
      return (short) ((bits >>> 16) | 0x40);
    }
    int rounding = 0x7FFF + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }
}
