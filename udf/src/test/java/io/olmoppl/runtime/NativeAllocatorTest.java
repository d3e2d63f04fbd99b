package io.olmoppl.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * What the job sets in its own environment for its libtorch (MKL without its buffer cache, which
 * needs the job's malloc tuning) reaches a child process only where the child is started as a plain
 * {@link ProcessBuilder} does; {@link NativeAllocator#clearForChild} leaves the child what the user
 * gave the JVM.
 */
class NativeAllocatorTest {
  private static final String VAR = NativeAllocator.MKL_FAST_MM + "=";

  @Test
  void aChildGetsTheUsersEnvironmentNotTheJobsMklSetting() throws Exception {
    // the environment this JVM started with (setenv does not rewrite it)
    List<String> atStart =
        Arrays.asList(
            new String(Files.readAllBytes(Path.of("/proc/self/environ")), StandardCharsets.UTF_8)
                .split("\0"));
    assumeTrue(NativeAllocator.tune(), "glibc's malloc is not tuned here");
    List<String> userGave = atStart.stream().filter(v -> v.startsWith(VAR)).toList();

    List<String> plain = childEnv(new ProcessBuilder("env"));
    assertEquals(
        userGave.isEmpty() ? List.of(VAR + "1") : userGave,
        plain.stream().filter(v -> v.startsWith(VAR)).toList(),
        "a plain child inherits the process's environment as the job left it");

    // a child's environment as Java builds it once the job has set the variable (Java copies the
    // process's environment when first asked, which may be after the job set it)
    ProcessBuilder cleared = new ProcessBuilder("env");
    cleared.environment().put(NativeAllocator.MKL_FAST_MM, plainValue(plain));
    NativeAllocator.clearForChild(cleared.environment());
    assertEquals(
        userGave,
        childEnv(cleared).stream().filter(v -> v.startsWith(VAR)).toList(),
        "a cleared child gets what the user gave, nothing the job set");
  }

  private static String plainValue(List<String> env) {
    return env.stream()
        .filter(v -> v.startsWith(VAR))
        .findFirst()
        .orElseThrow()
        .substring(VAR.length());
  }

  private static List<String> childEnv(ProcessBuilder pb) throws IOException, InterruptedException {
    Process p = pb.redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor() == 0, out);
    return Arrays.asList(out.split("\n"));
  }
}
