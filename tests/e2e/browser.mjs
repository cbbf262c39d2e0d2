// Debian's Chromium, driven by playwright-core (never a downloaded browser), with the flags the
// project uses (DEVELOPERS.md): WebGPU on SwiftShader (Vulkan on the CPU) where asked.
import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const BASE_FLAGS = ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];
const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=swiftshader'];

/// A persistent context in a fresh user-data-dir (Cache Storage and service workers need one).
export async function launch({ webgpu = true } = {}) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'scorecam-chromium-'));
  const args = [...BASE_FLAGS, ...(webgpu ? WEBGPU_FLAGS : ['--disable-gpu'])];
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args, viewport: { width: 1280, height: 900 } });
}
