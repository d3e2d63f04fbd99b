package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import io.olmoppl.job.testing.SparkTestBase;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import net.jpountz.lz4.LZ4FrameOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The run reads exactly what was named: a path with pattern characters is that path, partition
 * folders give their columns, a file Spark would read wrongly is refused before scoring, a long
 * valid JSON line is read.
 */
class InputPathTest extends SparkTestBase {
  @TempDir Path tmp;

  Cli run(String... extra) {
    String[] base = {"score", "--model", model(), "--output-format", "json"};
    String[] all = new String[base.length + extra.length];
    System.arraycopy(base, 0, all, 0, base.length);
    System.arraycopy(extra, 0, all, base.length, extra.length);
    return cli(all);
  }

  static Map<String, Integer> texts(Path out) throws Exception {
    Map<String, Integer> m = new TreeMap<>();
    for (JsonObject r : readJsonLines(out)) {
      m.merge(r.get("text").getAsString(), 1, Integer::sum);
    }
    return m;
  }

  @Test
  void aPathWithPatternCharactersIsReadAsNamed() throws Exception {
    Path named = Files.createDirectories(tmp.resolve("batch[2024]"));
    Path sibling = Files.createDirectories(tmp.resolve("batch2"));
    Files.writeString(named.resolve("a.jsonl"), "{\"text\":\"the named folder\"}\n");
    Files.writeString(
        sibling.resolve("b.jsonl"), "{\"text\":\"a sibling\"}\n{\"text\":\"another sibling\"}\n");
    Path out = tmp.resolve("out");
    Cli r = run("--input", named.toString(), "--output", out.toString());
    assertEquals(0, r.code(), r.err());
    assertEquals(Map.of("the named folder", 1), texts(out));
    // a pattern only when asked for
    Path out2 = tmp.resolve("out2");
    Cli g = run("--input-glob", tmp.resolve("batch*").toString(), "--output", out2.toString());
    assertEquals(0, g.code(), g.err());
    assertEquals(Map.of("the named folder", 1, "a sibling", 1, "another sibling", 1), texts(out2));
  }

  @Test
  void partitionFoldersAreReadWithTheirColumns() throws Exception {
    Path corpus = tmp.resolve("corpus");
    Files.createDirectories(corpus.resolve("lang=en"));
    Files.createDirectories(corpus.resolve("lang=de"));
    Files.writeString(
        corpus.resolve("lang=en/part-0.jsonl"), "{\"text\":\"good morning\"}\n{\"text\":\"hi\"}\n");
    Files.writeString(corpus.resolve("lang=de/part-0.jsonl"), "{\"text\":\"guten Morgen\"}\n");
    Path out = tmp.resolve("out");
    Cli r = run("--input", corpus.toString(), "--output", out.toString());
    assertEquals(0, r.code(), r.err());
    Map<String, String> lang = new TreeMap<>();
    for (JsonObject row : readJsonLines(out)) {
      lang.put(row.get("text").getAsString(), row.get("lang").getAsString());
      assertEquals("ok", row.get("ppl_status").getAsString());
    }
    assertEquals(Map.of("good morning", "en", "hi", "en", "guten Morgen", "de"), lang);
  }

  @Test
  void aFileTheRunCannotReadIsRefusedBeforeScoring() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("mixed"));
    Files.writeString(dir.resolve("a.jsonl"), "{\"text\":\"plain\"}\n");
    // the lz4 tool's frame format, which Hadoop's Lz4Codec (chosen by the extension) cannot read
    try (OutputStream o =
        new LZ4FrameOutputStream(Files.newOutputStream(dir.resolve("b.jsonl.lz4")))) {
      o.write(
          "{\"text\":\"compressed one\"}\n{\"text\":\"compressed two\"}\n"
              .getBytes(StandardCharsets.UTF_8));
    }
    Path out = tmp.resolve("out");
    Cli r = run("--input", dir.toString(), "--output", out.toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().contains("b.jsonl.lz4") && r.err().contains("LZ4 frame"), r.err());
    assertFalse(Files.exists(out));
    // compressed bytes under a name without a codec's extension are not read as text either
    Path xz = Files.createDirectories(tmp.resolve("xz"));
    Files.write(xz.resolve("c.jsonl"), new byte[] {(byte) 0xfd, '7', 'z', 'X', 'Z', 0, 0, 4, 1, 2});
    Cli x = run("--input", xz.toString(), "--output", out.toString());
    assertEquals(1, x.code(), x.err());
    assertTrue(x.err().contains("c.jsonl") && x.err().contains("xz-compressed"), x.err());
    assertFalse(Files.exists(out));
  }

  @Test
  void aJsonLineWithAStringOverTwentyMillionCharactersIsRead() throws Exception {
    // Jackson's default limit is 20,000,000 characters per string; the long field is not the text,
    // so the test scores little
    String blob = "x".repeat(20_000_001);
    Path in = tmp.resolve("long.jsonl");
    Files.writeString(
        in,
        "{\"text\":\"a short text\",\"blob\":\""
            + blob
            + "\"}\n{\"text\":\"another\",\"blob\":\"y\"}\n");
    Path out = tmp.resolve("out");
    Cli r = run("--input", in.toString(), "--output", out.toString());
    assertEquals(0, r.code(), r.err());
    List<JsonObject> rows = readJsonLines(out);
    assertEquals(2, rows.size());
    for (JsonObject row : rows) {
      assertEquals("ok", row.get("ppl_status").getAsString(), row.get("text").getAsString());
      int len = row.get("blob").getAsString().length();
      assertEquals(row.get("text").getAsString().equals("another") ? 1 : 20_000_001, len);
    }
  }
}
