// The colour theme: dark by default, light on request, remembered in
// localStorage. Other modules read colours from the CSS variables, so the
// stylesheet stays the one place that defines them.

const KEY = 'titanium.theme';

export class Theme {
  /**
   * @param {HTMLButtonElement} button  the toggle
   * @param {(theme: string) => void} onChange  called after every switch
   */
  constructor(button, onChange = () => {}) {
    this.button = button;
    this.onChange = onChange;
    let saved = null;
    try {
      saved = localStorage.getItem(KEY);
    } catch {
      // Storage may be disabled; the default theme is fine.
    }
    this.apply(saved === 'light' ? 'light' : 'dark');
    button.addEventListener('click', () => {
      this.apply(this.current === 'dark' ? 'light' : 'dark');
      try {
        localStorage.setItem(KEY, this.current);
      } catch {
        // Not remembered, still switched.
      }
      this.onChange(this.current);
    });
  }

  apply(theme) {
    this.current = theme;
    document.documentElement.dataset.theme = theme;
    const next = theme === 'dark' ? 'light' : 'dark';
    this.button.setAttribute('aria-label', `Switch to ${next} theme`);
    this.button.title = `Switch to ${next} theme`;
  }

  /** color reads a CSS custom property of the current theme. */
  static color(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }
}
