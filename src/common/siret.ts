/**
 * French company identifiers, shared by onboarding (the learner's employer) and certificates (the
 * training provider). Pure functions.
 */

/** La Poste's SIREN: its many establishments got SIRETs whose digit sum is a multiple of 5 instead of a Luhn key. */
export const LA_POSTE_SIREN = '356000000';

/** Luhn (mod 10) check over a string of digits, as used by SIREN and SIRET. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** La Poste's rule for its establishments' SIRETs (14 digits starting with its SIREN). */
export function laPosteSiretValid(siret: string): boolean {
  return siret.startsWith(LA_POSTE_SIREN) && [...siret].reduce((s, c) => s + (c.charCodeAt(0) - 48), 0) % 5 === 0;
}
