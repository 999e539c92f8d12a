/**
 * A spinner on stderr for work that can take a while (large imports and
 * exports). It draws only when stderr is a terminal and only after a short
 * delay, so quick commands and pipes/logs never see it.
 */
export interface Progress {
  update(label: string): void;
  stop(): void;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function progress(label: string, opts: { delayMs?: number; stream?: NodeJS.WriteStream } = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (!stream.isTTY)
    return {
      update() {
        /* not a terminal */
      },
      stop() {
        /* not a terminal */
      },
    };
  let text = label;
  let frame = 0;
  let drawn = false;
  let timer: NodeJS.Timeout | null = null;
  const started = Date.now();
  const draw = () => {
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    stream.write(`\r\x1b[K${FRAMES[frame++ % FRAMES.length]} ${text} (${secs}s)`);
    drawn = true;
  };
  const delay = setTimeout(() => {
    draw();
    timer = setInterval(draw, 80);
    timer.unref();
  }, opts.delayMs ?? 250);
  delay.unref();
  return {
    update(l) {
      text = l;
    },
    stop() {
      clearTimeout(delay);
      if (timer) clearInterval(timer);
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}

/** Runs `work` with a spinner showing `label`, clearing it however `work` ends. */
export async function withProgress<T>(label: string, work: (p: Progress) => Promise<T>): Promise<T> {
  const p = progress(label);
  try {
    return await work(p);
  } finally {
    p.stop();
  }
}
