/**
 * The longest delay a Node timer (setTimeout, setInterval) holds: 2^31-1 ms,
 * about 24.8 days. A longer one does not wait: Node warns and fires it after
 * 1 ms. Every duration that becomes a timer is checked against it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
