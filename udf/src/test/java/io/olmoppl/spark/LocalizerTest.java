package io.olmoppl.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Copies of a checkpoint on a non-local Hadoop file system: keyed by what the files are (a
 * checkpoint replaced at the same path gets a new copy), written under a private name and renamed
 * into place (concurrent JVMs never share a half-written folder), older copies of the path removed.
 */
class LocalizerTest {
  /** The local disk under another scheme, so that the remote-copy path runs without a cluster. */
  public static final class OtherFs extends RawLocalFileSystem {
    @Override
    public URI getUri() {
      return URI.create("otherfs:///");
    }

    @Override
    public String getScheme() {
      return "otherfs";
    }
  }

  @TempDir Path tmp;

  static Configuration conf() {
    Configuration c = new Configuration();
    c.set("fs.otherfs.impl", OtherFs.class.getName());
    c.setBoolean("fs.otherfs.impl.disable.cache", true);
    return c;
  }

  static List<String> copies(Path root) throws Exception {
    try (Stream<Path> s = Files.list(root)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void replacedCheckpointIsCopiedAgainAndOldCopiesAreRemoved() throws Exception {
    Path src = Files.createDirectories(tmp.resolve("remote/ckpt"));
    Files.writeString(src.resolve("config.json"), "{\"v\":1}");
    Files.write(src.resolve("model.safetensors"), new byte[] {1, 2, 3, 4});
    Path root = tmp.resolve("copies");
    String uri = "otherfs:" + src.toAbsolutePath();

    Path first = Localizer.localize(uri, conf(), root);
    assertArrayEquals(
        new byte[] {1, 2, 3, 4}, Files.readAllBytes(first.resolve("model.safetensors")));
    assertEquals(first, Localizer.localize(uri, conf(), root), "unchanged files: the same copy");

    // same path, same size, new bytes (as a re-upload of a retrained checkpoint)
    Files.write(src.resolve("model.safetensors"), new byte[] {9, 9, 9, 9});
    Path second = Localizer.localize(uri, conf(), root);
    assertNotEquals(first, second);
    assertArrayEquals(
        new byte[] {9, 9, 9, 9}, Files.readAllBytes(second.resolve("model.safetensors")));
    assertFalse(Files.exists(first), "the older copy of the path is removed");
    assertEquals(List.of(second.getFileName().toString()), copies(root));
  }

  @Test
  void concurrentCopiesOnOneHostNeverShareAHalfWrittenFolder() throws Exception {
    Path src = Files.createDirectories(tmp.resolve("remote/big"));
    byte[] data = new byte[4 << 20];
    new java.util.Random(1).nextBytes(data);
    Files.write(src.resolve("model.safetensors"), data);
    Files.writeString(src.resolve("config.json"), "{}");
    Path root = tmp.resolve("copies");
    String uri = "otherfs:" + src.toAbsolutePath();
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<Path>> f = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        f.add(pool.submit(() -> Localizer.localize(uri, conf(), root)));
      }
      Path want = f.get(0).get();
      for (Future<Path> x : f) {
        Path got = x.get();
        assertEquals(want, got);
        assertArrayEquals(data, Files.readAllBytes(got.resolve("model.safetensors")));
      }
    } finally {
      pool.shutdownNow();
    }
    assertEquals(1, copies(root).size(), "no temporary folders left: " + copies(root));
    assertTrue(
        Files.isRegularFile(
            copies(root).stream()
                .map(root::resolve)
                .findFirst()
                .orElseThrow()
                .resolve("config.json")));
  }
}
