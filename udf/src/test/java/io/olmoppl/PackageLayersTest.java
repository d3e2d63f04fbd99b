package io.olmoppl;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.olmoppl.testing.PackageLayers;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The library's packages as the README's Layout lists them, lowest first: each refers only to the
 * ones below it, never to the job or to test code.
 */
class PackageLayersTest {
  @Test
  void eachPackageRefersOnlyToTheOnesBelowIt() {
    List<String> broken =
        new PackageLayers("io.olmoppl", PackageLayers.LIBRARY, Set.of())
            .violations(Path.of("src/main/java"));
    assertEquals(List.of(), broken);
  }
}
