package io.olmoppl.checkpoint;

import io.olmoppl.checkpoint.Checkpoint.Located;
import io.olmoppl.checkpoint.SafetensorsFile.TensorInfo;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;

/**
 * A checkpoint's identity for caches, row stamps and summaries: the first 16 hex digits of SHA-256
 * over config.json, tokenizer.json, every tensor's header entry (name, dtype, shape, length) and
 * the content digest of every weight file ({@link FileDigests}: every byte, computed once per file
 * and cached by file identity). Two checkpoints whose numbers differ in any weight have different
 * fingerprints; so do two copies of one model saved with other shards or metadata, which costs a
 * re-score, never a wrong carry-over.
 */
final class Fingerprint {
  private Fingerprint() {}

  /**
   * @param tensors every stored tensor, sorted by name
   * @param digests the weight files' content digests
   */
  static String of(
      byte[] config, byte[] tokenizer, Map<String, Located> tensors, FileDigests digests) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(config);
      md.update((byte) 0);
      md.update(tokenizer);
      Map<String, SafetensorsFile> files = new TreeMap<>();
      for (Located t : tensors.values()) { // TreeMap: sorted by name
        TensorInfo i = t.info();
        md.update(
            (i.name() + "|" + i.dtype() + "|" + i.shapeString() + "|" + i.byteLength() + "\n")
                .getBytes(StandardCharsets.UTF_8));
        files.put(t.file().path().getFileName().toString(), t.file());
      }
      for (Map.Entry<String, SafetensorsFile> f : files.entrySet()) {
        String digest = digests.of(f.getValue().path()).digest();
        md.update((f.getKey() + "=" + digest + "\n").getBytes(StandardCharsets.UTF_8));
      }
      return HexFormat.of().formatHex(md.digest()).substring(0, 16);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
