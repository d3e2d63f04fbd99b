package io.olmoppl.job.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The tokenizers the job carries (allenai's OLMo tokenizer files, Apache-2.0), for the commands
 * that write checkpoints: make-checkpoint, demo and bench.
 */
public final class BundledTokenizers {
  private BundledTokenizers() {}

  /**
   * @param name {@code neox} (OLMo-1), {@code dolma2} (OLMo-2 and later) or a tokenizer.json path
   * @return the tokenizer's bytes
   * @throws UsageException when {@code name} is neither bundled nor a file
   */
  public static InputStream open(String name) throws IOException {
    String res =
        switch (name) {
          case "neox" -> "/io/olmoppl/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json";
          case "dolma2" -> "/io/olmoppl/tokenizers/allenai_dolma2.json";
          default -> null;
        };
    if (res == null) {
      Path p = Path.of(name);
      if (!Files.isRegularFile(p)) {
        throw new UsageException(
            "--tokenizer must be neox, dolma2 or a tokenizer.json file; "
                + name
                + " is none of these");
      }
      return Files.newInputStream(p);
    }
    InputStream in = BundledTokenizers.class.getResourceAsStream(res);
    if (in == null) {
      throw new IllegalStateException("bundled tokenizer " + res + " missing from the jar");
    }
    return in;
  }
}
