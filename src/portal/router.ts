import { useEffect, useState } from 'preact/hooks';

// Hash routes (`#/registries/x/networking`) need no server-side fallback: the management listener
// serves index.html at `/` and every page lives behind the `#`.

/** The current route as decoded path segments, re-rendering on navigation. */
export function useRoute(): string[] {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const update = () => setHash(location.hash);
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter((s) => s !== '')
    .map((s) => decodeURIComponent(s));
}

/** The `href` of a route given as unencoded segments. */
export function href(...segments: string[]): string {
  return `#/${segments.map((s) => encodeURIComponent(s)).join('/')}`;
}

/** Navigates to a route. */
export function navigate(...segments: string[]): void {
  location.hash = href(...segments);
}
