// The environment switches that make pagewalk act as on a kernel without a
// feature, so that its fallbacks can be tested and compared on any kernel:
//   PAGEWALK_DISABLE_SCAN=1            no PAGEMAP_SCAN (before Linux 6.7)
//   PAGEWALK_DISABLE_PROCMAP_QUERY=1   no PROCMAP_QUERY (before Linux 6.11)
// Read here only, when a measurement starts; the walk gets them as option
// bits (WALK_NO_SCAN, WALK_NO_PROCMAP_QUERY), never from the environment.

/** Whether switch `name` is on: '1' on, unset, '' or '0' off; anything else is a RangeError. */
function envSwitch(name: string): boolean {
  const v = process.env[name];
  if (v === undefined || v === '' || v === '0') return false;
  if (v === '1') return true;
  throw new RangeError(`${name} must be 1 (on) or 0 (off), got ${JSON.stringify(v)}`);
}

/** PAGEWALK_DISABLE_SCAN=1: plain pagemap reads wherever PAGEMAP_SCAN would be asked. */
export function scanDisabled(): boolean {
  return envSwitch('PAGEWALK_DISABLE_SCAN');
}

/** PAGEWALK_DISABLE_PROCMAP_QUERY=1: /proc/PID/maps parsed wherever PROCMAP_QUERY would be asked. */
export function procmapQueryDisabled(): boolean {
  return envSwitch('PAGEWALK_DISABLE_PROCMAP_QUERY');
}
