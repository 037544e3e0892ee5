/** Public face of src/anonymizer. */
export {};
