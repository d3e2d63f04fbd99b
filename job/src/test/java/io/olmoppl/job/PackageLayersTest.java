package io.olmoppl.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.olmoppl.testing.PackageLayers;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The job's packages as the README's Layout lists them, lowest first: each refers only to the ones
 * below it and to the library's packages, never to test code; Main, which dispatches the commands,
 * is on top.
 */
class PackageLayersTest {
  static final List<Set<String>> LAYERS =
      List.of(
          Set.of("cli"),
          Set.of("report"),
          Set.of("score", "inspect"),
          Set.of("tools", "demo"),
          Set.of(""));

  @Test
  void eachPackageRefersOnlyToTheOnesBelowIt() {
    List<String> broken =
        new PackageLayers("io.olmoppl.job", LAYERS, PackageLayers.libraryPackages())
            .violations(Path.of("src/main/java"));
    assertEquals(List.of(), broken);
  }
}
