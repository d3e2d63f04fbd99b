package io.olmoppl.checkpoint;

import io.olmoppl.checkpoint.Checkpoint.Located;
import io.olmoppl.checkpoint.SafetensorsFile.TensorInfo;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;

/**
 * A checkpoint's identity for caches and summaries: the first 16 hex digits of SHA-256 over
 * config.json, tokenizer.json and every tensor's header entry (name, dtype, shape, length). The
 * tensor data is not read, so it costs the same for any model size.
 */
final class Fingerprint {
  private Fingerprint() {}

  /**
   * @param tensors every stored tensor, sorted by name
   */
  static String of(byte[] config, byte[] tokenizer, Map<String, Located> tensors) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(config);
      md.update((byte) 0);
      md.update(tokenizer);
      for (Located t : tensors.values()) { // TreeMap: sorted by name
        TensorInfo i = t.info();
        md.update(
            (i.name() + "|" + i.dtype() + "|" + i.shapeString() + "|" + i.byteLength() + "\n")
                .getBytes(StandardCharsets.UTF_8));
      }
      return HexFormat.of().formatHex(md.digest()).substring(0, 16);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
