package io.olmoppl.runtime;

import ai.djl.engine.Engine;

/**
 * The one engine lookup: DJL's PyTorch engine, after {@link DjlSettings} are applied. The
 * tokenizers jar registers a second engine, which must never be picked, so nothing asks DJL for its
 * default engine.
 */
public final class TorchEngine {
  private TorchEngine() {}

  /**
   * @return the PyTorch engine (loading libtorch on first use)
   */
  public static Engine get() {
    DjlSettings.configure();
    return Engine.getEngine("PyTorch");
  }
}
