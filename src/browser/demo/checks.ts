/** The page's form values, checked before anything is built from them. */
export function checkIntegers(values: [name: string, value: number, min: number, max: number][]): void {
  for (const [name, value, min, max] of values) {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new Error(`${name} must be an integer from ${min} to ${max}, got ${value}`);
    }
  }
}
