package io.olmoppl.job.demo;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.zip.GZIPInputStream;

/**
 * The demo's text: King James Bible chapters bundled with olmo-ppl (made by {@code
 * scripts/demo-corpus} from the Debian package {@code bible-kjv-text}), one chapter per line.
 * Training uses seven books ({@link #TRAIN_BOOKS}); the book of Ruth is held out and scored by the
 * demo next to two controls made from it: the same words shuffled, and random characters.
 */
public final class DemoCorpus {
  static final String TRAIN_BOOKS = "Genesis, Exodus, Judges, 1 Samuel, Matthew, Luke, Acts";
  static final String TRAIN = "/io/olmoppl/demo/kjv-train.txt.gz";
  static final String HELD_OUT = "/io/olmoppl/demo/kjv-heldout.txt";

  /** One evaluation document: {@code source} is prose, shuffled or random. */
  record Doc(String source, String text) {}

  private DemoCorpus() {}

  /**
   * @return the bytes of a bundled resource (the cache key hashes the training text)
   */
  static byte[] resource(String name) throws IOException {
    try (InputStream in = DemoCorpus.class.getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalStateException("bundled demo text " + name + " missing from the jar");
      }
      return in.readAllBytes();
    }
  }

  /**
   * @return the training chapters
   */
  static List<String> training() throws IOException {
    try (InputStream in = new GZIPInputStream(new ByteArrayInputStream(resource(TRAIN)))) {
      return lines(in.readAllBytes());
    }
  }

  /**
   * @return the held-out chapters (Ruth 1-4)
   */
  static List<String> heldOut() throws IOException {
    return lines(resource(HELD_OUT));
  }

  private static List<String> lines(byte[] utf8) {
    return Arrays.stream(new String(utf8, StandardCharsets.UTF_8).split("\n"))
        .filter(s -> !s.isBlank())
        .toList();
  }

  /**
   * For every held-out chapter: the chapter ({@code prose}), its words in a random order ({@code
   * shuffled}: same words, same bytes, no English order), and as many random printable ASCII
   * characters as it has bytes ({@code random}).
   *
   * @param seed fixes the shuffles and the random characters
   */
  static List<Doc> evaluation(List<String> chapters, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    List<Doc> prose = new ArrayList<>();
    List<Doc> shuffled = new ArrayList<>();
    List<Doc> random = new ArrayList<>();
    for (String c : chapters) {
      prose.add(new Doc("prose", c));
      String[] words = c.split(" ");
      for (int i = words.length - 1; i > 0; i--) { // Fisher-Yates
        int j = rnd.nextInt(i + 1);
        String w = words[i];
        words[i] = words[j];
        words[j] = w;
      }
      shuffled.add(new Doc("shuffled", String.join(" ", words)));
      StringBuilder r = new StringBuilder();
      for (int i = c.getBytes(StandardCharsets.UTF_8).length; i > 0; i--) {
        r.append((char) (' ' + rnd.nextInt(95))); // 0x20..0x7E
      }
      random.add(new Doc("random", r.toString()));
    }
    List<Doc> all = new ArrayList<>(prose);
    all.addAll(shuffled);
    all.addAll(random);
    return all;
  }
}
